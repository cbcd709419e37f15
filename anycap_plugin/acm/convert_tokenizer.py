"""A checkpoint's tokenizer as a transformers fast tokenizer that yields the reference's ids.

Published InternVL-chat folders with an InternLM2 language model ship a sentencepiece model and a
remote-code slow tokenizer (`InternLM2Tokenizer`). That tokenizer encodes each stretch of text
between special tokens with sentencepiece on its own, so the dummy prefix `▁` lands at the start
of every stretch, and it puts `<s>` in front. The fast tokenizer built here does the same: the
normalizer escapes spaces and prepends `▁` per stretch (normalizers run per stretch in
`tokenizers`), the BPE model carries the sentencepiece vocabulary with byte fallback, and the
normalizer spec (dummy prefix, whitespace handling, character map) is read from the model file,
never assumed. After building, the ids are checked against sentencepiece itself on probe texts;
a mismatch stops the conversion.

Folders with a `tokenizer.json`, or a tokenizer transformers implements natively (Qwen2, Llama),
are loaded as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TokenizerConversionError

_SP_TYPES = {"normal": 1, "unknown": 2, "control": 3, "user_defined": 4, "byte": 6}
_PROBES = (
    "Describe the image in one sentence.",
    " leading and  double  spaces ",
    "line one\nline two\n\n",
    "Digits 1234 and 3D, symbols #@%&*()!",
    "中文标题：一只猫。",
    "emoji 🙂 and accents café",
    "tabs\tand\r\nreturns",
    "'quoted' \"text\"",
)


def load_tokenizer(src: Path) -> Any:
    """The source folder's tokenizer as a fast tokenizer, plus the special tokens it declares."""
    config = _read_json(src / "tokenizer_config.json")
    cls = str(config.get("tokenizer_class") or "")
    remote = "AutoTokenizer" in (config.get("auto_map") or {})
    if (src / "tokenizer.json").exists():
        return _declared_class(cls, remote).from_pretrained(str(src))
    if (src / "tokenizer.model").exists() and (remote or cls.startswith("InternLM2")):
        return sentencepiece_to_fast(
            src / "tokenizer.model", config, _read_json(src / "added_tokens.json")
        )
    if not remote and cls and ((src / "tokenizer.model").exists() or (src / "vocab.json").exists()):
        return _declared_class(cls, remote).from_pretrained(
            str(src)
        )  # a tokenizer transformers implements itself
    found = sorted(
        p.name for p in src.iterdir() if "token" in p.name or p.suffix in (".model", ".txt")
    )
    raise TokenizerConversionError(
        f"No usable tokenizer in {str(src)!r} (tokenizer_class {cls or 'unset'!r}; found: {found or 'nothing'}).",
        hint="A published folder carries tokenizer_config.json with tokenizer.json, tokenizer.model "
        "(sentencepiece) or vocab.json + merges.txt; re-download the tokenizer files.",
    )


def _declared_class(name: str, remote: bool) -> Any:
    """The tokenizer class `tokenizer_config.json` declares when transformers has it, else the generic fast
    one: never through AutoTokenizer, which reads the folder's `config.json` and asks to run the
    checkpoint's code when an `auto_map` is there (InternVL-chat folders carry one)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    found = None if remote or not name else tokenizer_class_from_name(name)
    return found or PreTrainedTokenizerFast


def sentencepiece_to_fast(model_file: Path, config: dict, added: dict | None = None) -> Any:
    """Build the fast tokenizer from a sentencepiece model file and the slow tokenizer's config."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import generate_merges

    proto = _read_proto(model_file)
    pieces = list(proto.pieces)
    spec = proto.normalizer_spec
    unk = pieces[proto.trainer_spec.unk_id].piece
    user_defined = [p.piece for p in pieces if p.type == _SP_TYPES["user_defined"]]
    if proto.trainer_spec.model_type == 2:  # BPE
        vocab = {p.piece: i for i, p in enumerate(pieces)}
        skip = [
            p.piece
            for p in pieces
            if p.type in (_SP_TYPES["control"], _SP_TYPES["unknown"], _SP_TYPES["byte"])
        ]
        multi = [s for s in user_defined if len(s) > 1]
        model: models.Model = models.BPE(
            vocab,
            generate_merges(vocab, None, skip_tokens=skip),
            unk_token=unk,
            fuse_unk=True,
            byte_fallback=proto.trainer_spec.byte_fallback,
            ignore_merges=bool(multi),
        )
    elif proto.trainer_spec.model_type == 1:  # unigram
        multi = []
        model = models.Unigram(
            [(p.piece, p.score) for p in pieces],
            proto.trainer_spec.unk_id,
            byte_fallback=proto.trainer_spec.byte_fallback,
        )
    else:
        raise TokenizerConversionError(
            f"{model_file.name}: sentencepiece model type {proto.trainer_spec.model_type} "
            "is not supported.",
            hint="Only BPE and unigram models convert.",
        )
    tok = Tokenizer(model)
    steps: list[normalizers.Normalizer] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [
            normalizers.Strip(left=True, right=True),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    if not spec.HasField("escape_whitespaces") or spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", "▁"))
    if spec.add_dummy_prefix:
        steps.append(
            normalizers.Prepend("▁")
        )  # per stretch between special tokens, as the reference encodes
    tok.normalizer = normalizers.Sequence(steps)
    if multi:  # user-defined symbols are atomic in sentencepiece
        tok.pre_tokenizer = pre_tokenizers.Split(
            Regex("|".join(re.escape(s) for s in multi)), behavior="isolated"
        )
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
        + ([decoders.Strip(" ", 1, 0)] if spec.add_dummy_prefix else [])
    )
    specials = _added_tokens(config, added, pieces)
    for content, options in specials:
        tok.add_special_tokens([AddedToken(content, **options)]) if options[
            "special"
        ] else tok.add_tokens([AddedToken(content, **options)])
    bos = config.get("bos_token") or pieces[proto.trainer_spec.bos_id].piece
    bos = bos["content"] if isinstance(bos, dict) else bos
    if config.get("add_bos_token", True) and proto.trainer_spec.bos_id >= 0:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    named = {
        k: (v["content"] if isinstance(v, dict) else v)
        for k in ("bos_token", "eos_token", "unk_token", "pad_token")
        if (v := config.get(k))
    }
    extra = [c for c, o in specials if o["special"] and c not in named.values()]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        clean_up_tokenization_spaces=False,
        additional_special_tokens=extra,
        **named,
    )
    verify_against_sentencepiece(fast, model_file, user_defined)
    return fast


def verify_against_sentencepiece(
    fast: Any, model_file: Path, user_defined: Sequence[str] = ()
) -> None:
    """Encode probe texts with sentencepiece itself and with `fast`; any difference stops the conversion."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    for text in (*_PROBES, *(f"a{s}b {s}" for s in user_defined)):
        want = sp.encode(text)
        got = fast(text, add_special_tokens=False)["input_ids"]
        if got != want:
            raise TokenizerConversionError(
                f"The converted tokenizer does not reproduce sentencepiece on {text!r}: {got[:12]} != {want[:12]}.",
                hint="Report this checkpoint's tokenizer; its normalizer or vocabulary needs a rule the converter lacks.",
            )


def _added_tokens(config: dict, added: dict | None, pieces: list) -> list[tuple[str, dict]]:
    """The slow tokenizer's added tokens, in id order; new ones must extend the vocabulary without gaps."""
    decoder = {int(i): t for i, t in (config.get("added_tokens_decoder") or {}).items()}
    for content, i in (added or {}).items():
        decoder.setdefault(int(i), {"content": content, "special": True})
    out, next_id = [], len(pieces)
    for i in sorted(decoder):
        t = decoder[i]
        if i >= len(pieces):
            if i != next_id:
                raise TokenizerConversionError(
                    f"Added token {t['content']!r} has id {i}, expected {next_id}.",
                    hint="The tokenizer's added tokens leave a gap in the vocabulary.",
                )
            next_id += 1
        elif pieces[i].piece != t["content"]:
            raise TokenizerConversionError(
                f"Added token {t['content']!r} has id {i}, which the sentencepiece model "
                f"holds as {pieces[i].piece!r}.",
                hint="The tokenizer files do not match.",
            )
        out.append(
            (
                t["content"],
                {
                    "special": bool(t.get("special", True)),
                    "normalized": bool(t.get("normalized", False)),
                    "lstrip": bool(t.get("lstrip", False)),
                    "rstrip": bool(t.get("rstrip", False)),
                    "single_word": bool(t.get("single_word", False)),
                },
            )
        )
    return out


def _read_proto(model_file: Path) -> Any:
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as e:
        raise TokenizerConversionError(
            f"Reading {model_file.name} needs sentencepiece and protobuf ({e}).",
            hint="pip install 'anycap-plugin[hf]' (or: pip install sentencepiece protobuf)",
        ) from None
    # the module builds its message classes at import time, so its stubs do not list them
    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    try:
        proto.ParseFromString(model_file.read_bytes())
    except Exception as e:
        raise TokenizerConversionError(
            f"{model_file} is not a sentencepiece model: {e}", hint="Re-download tokenizer.model."
        ) from None
    return proto


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise TokenizerConversionError(
            f"{path} is not valid JSON: {e}", hint="Re-download the tokenizer files."
        ) from None
