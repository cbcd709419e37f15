"""MiniCPM-o: remote code only on explicit opt-in; a tiny local folder carrying its own code."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from anycap_plugin import get_captioner, plugins
from anycap_plugin.testing import build_tokenizer

REMOTE_CODE = Path(__file__).parent / "remote_code" / "minicpmo_tiny"


@pytest.fixture(scope="session")
def tiny_minicpmo(tmp_path_factory):
    """A model folder as the hub has it: config.json with auto_map, the code files, weights, tokenizer."""
    folder = tmp_path_factory.mktemp("minicpmo")
    for f in REMOTE_CODE.glob("*.py"):
        shutil.copyfile(f, folder / f.name)
    tok = build_tokenizer(folder)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "minicpmo",
                "vocab_size": len(tok),
                "eos_token_id": tok.eos_token_id,
                "pad_token_id": tok.pad_token_id,
                "auto_map": {
                    "AutoConfig": "configuration_minicpmo.MiniCPMOConfig",
                    "AutoModel": "modeling_minicpmo.MiniCPMO",
                },
            }
        )
    )
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    torch.manual_seed(0)
    AutoModel.from_config(config, trust_remote_code=True).save_pretrained(str(folder))
    assert (
        json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"]
        == "modeling_minicpmo.MiniCPMO"
    )
    return folder


@pytest.fixture(autouse=True)
def only_minicpmo(monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "minicpm_o")
    monkeypatch.delenv("ANYCAP_TRUST_REMOTE_CODE", raising=False)
    plugins.reset()


def test_refuses_remote_code_without_opt_in(tiny_minicpmo):
    from anycap_minicpm_o.captioner import RemoteCodeNotTrustedError

    with pytest.raises(RemoteCodeNotTrustedError, match="ANYCAP_TRUST_REMOTE_CODE=1") as err:
        get_captioner(f"minicpm-o:{tiny_minicpmo}")
    assert "openai:" in str(err.value)  # and it names the served alternative


@pytest.mark.parametrize("opt_in", ["option", "env"])
def test_captions_image_video_and_audio_once_opted_in(
    tiny_minicpmo, monkeypatch, opt_in, image_path, video_path, audio_path
):
    if opt_in == "env":
        monkeypatch.setenv("ANYCAP_TRUST_REMOTE_CODE", "1")
        cap = get_captioner(f"minicpm-o:{tiny_minicpmo}")
    else:
        cap = get_captioner(f"minicpm-o:{tiny_minicpmo}", trust_remote_code=True)
    assert type(cap.model).__name__ == "MiniCPMO"
    for media in (image_path, video_path, audio_path):
        c = cap.caption(media, "Describe it.", max_new_tokens=5, num_frames=3)
        assert isinstance(c.text, str) and c.models == {"base": cap.id}
