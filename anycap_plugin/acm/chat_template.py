"""InternVL-chat conversation templates, by the name a checkpoint's `config.json` gives (`template`).

A published InternVL-chat model was trained and evaluated with one of these (InternVL's
`conversation.py`, MPT separator style): the system turn, then each user turn as
`role + message + sep`, then the assistant role. Generation stops at `sep` (stripped), which is
`<|im_end|>` for the ChatML-like ones. `render` writes a single-turn prompt exactly as the
reference `chat()` does; `to_jinja` writes the same prompt as a transformers chat template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UnknownTemplateError

INTERNVL_SYSTEM = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    system_template: str
    system_message: str
    user: str
    assistant: str
    sep: str
    sep2: str | None = (
        None  # MPT_TWO templates end a finished answer with it: generation stops there
    )

    def render(self, question: str, system_message: str | None = None) -> str:
        """The prompt for one user turn, ending where the assistant's answer starts."""
        system = self.system_template.format(
            system_message=self.system_message if system_message is None else system_message
        )
        return system + self.sep + self.user + question + self.sep + self.assistant

    @property
    def stop(self) -> str:
        """The token generation stops at (the reference converts `sep.strip()`, or `sep2.strip()`, to an id)."""
        return (self.sep2 or self.sep).strip()

    def to_jinja(self, system_message: str | None = None) -> str:
        """A transformers chat template writing the same text; a system message in `messages` wins."""
        system = self.system_message if system_message is None else system_message
        head, _, tail = self.system_template.partition("{system_message}")
        q = json.dumps
        return (
            "{% set ns = namespace(system=" + q(system) + ") %}"
            "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.system = m['content'] %}{% endif %}{% endfor %}"
            "{{ " + q(head) + " + ns.system + " + q(tail + self.sep) + " }}"
            "{% for m in messages %}{% if m['role'] != 'system' %}"
            "{% if m['role'] == 'user' %}{{ "
            + q(self.user)
            + " }}{% else %}{{ "
            + q(self.assistant)
            + " }}{% endif %}"
            "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
            "{% if p['type'] == 'image' %}{{ '<image>\\n' }}{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}"
            "{% endfor %}{% endif %}{{ " + q(self.sep) + " }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ " + q(self.assistant) + " }}{% endif %}"
        )


_CHATML_ROLES = ("<|im_start|>user\n", "<|im_start|>assistant\n")
TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate(
            "internvl2_5",
            "<|im_start|>system\n{system_message}",
            INTERNVL_SYSTEM,
            *_CHATML_ROLES,
            "<|im_end|>\n",
        ),
        ChatTemplate(
            "internlm2-chat",
            "<|im_start|>system\n{system_message}",
            "You are an AI assistant whose name is InternLM (书生·浦语).",
            *_CHATML_ROLES,
            "<|im_end|>",
        ),
        ChatTemplate(
            "Hermes-2",
            "<|im_start|>system\n{system_message}",
            "Answer the questions.",
            *_CHATML_ROLES,
            "<|im_end|>",
        ),
        ChatTemplate(
            "phi3-chat",
            "<|system|>\n{system_message}",
            "You are an AI assistant whose name is Phi-3.",
            "<|user|>\n",
            "<|assistant|>\n",
            "<|end|>",
        ),
        ChatTemplate(
            "llama3-chat",
            "<|system|>\n{system_message}",
            "You are an AI assistant whose name is InternVL.",
            "<|user|>\n",
            "<|assistant|>\n",
            "<|end|>",
        ),
        # InternVL 3.5 with a GPT-OSS language model (internvl_chat_gpt_oss/.../conversation.py, MPT_TWO)
        ChatTemplate(
            "internvl3_5_gpt_oss",
            "<|start|>system<|message|>{system_message}",
            "You are InternVL, a large language model trained by Shanghai AI Laboratory.\nKnowledge cutoff: "
            "2024-06\nCurrent date: 2025-08-06\n\nReasoning: low\n\n# Valid channels: final. Channel must be "
            "included for every message.",
            "<|start|>user<|message|>",
            "<|start|>assistant",
            "<|end|>",
            sep2="<|return|>",
        ),
    )
}


def get_template(name: str) -> ChatTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise UnknownTemplateError(
            f"Unknown conversation template {name!r}.",
            hint=f"Known templates: {', '.join(sorted(TEMPLATES))}. A checkpoint with "
            "another template needs it added to anycap_plugin/acm/chat_template.py.",
        ) from None
