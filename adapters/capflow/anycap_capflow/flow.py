"""One item through a CapFlow workflow: route -> specialist agents in parallel -> summary -> quality filter.

Everything runs on the shared `CallEngine`, so the endpoint limits hold across items and the
call cache makes a re-run pay only for calls that did not finish.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anycap_plugin.call_engine import CallEngine, Reply, RoleUsage, fill
from anycap_plugin.media import Media, media_parts, user_message
from anycap_plugin.openai_compat import json_object

from .workflow import Workflow, WorkflowError

FILTER_TOP_MARK = 3


class CapFlow:
    def __init__(self, workflow: Workflow, engine: CallEngine) -> None:
        self.workflow, self.engine = workflow, engine

    async def caption(
        self,
        media: Media,
        instruction: str | None,
        *,
        domain: str | None = None,
        num_frames: int = 8,
        run_filter: bool | None = None,
    ) -> dict[str, Any]:
        """The item's record: `caption`, `domain`, `confidence`, `routed`, `agents`, `summary`,
        `filter` (scores, kept) and `usage` per role."""
        wf = self.workflow
        if domain is not None and domain not in wf.domains:
            raise WorkflowError(
                f"Unknown domain {domain!r}.", hint="Domains: " + ", ".join(wf.domains) + "."
            )
        parts = await asyncio.to_thread(media_parts, media, num_frames)
        kind = "video" if media.modality == "video" else "image"
        replies: list[tuple[str, Reply]] = []
        record: dict[str, Any] = {}
        if domain is not None:
            record.update(domain=domain, confidence=None, routed="given")
        else:
            ask = fill(wf.router_prompt, media=kind, domains=self._menu())
            reply = await self.engine.chat(
                wf.router_role, user_message(ask, parts), parse=self._route
            )
            replies.append((wf.router_role, reply))
            picked, confidence = reply.data
            fallback = picked is None or confidence < wf.min_confidence
            record.update(
                domain=wf.default_domain if fallback else picked,
                confidence=confidence,
                routed="fallback" if fallback else "router",
                router_choice=picked,
            )
        chosen = wf.domains[record["domain"]]
        request = f"The user asks for: {instruction}\n" if instruction else ""
        agent_replies = await asyncio.gather(
            *(
                self.engine.chat(
                    a.role,
                    user_message(
                        fill(
                            wf.agent_prompt,
                            kind=a.kind,
                            task=a.task,
                            request=request,
                            domain_description=chosen.description,
                            media=kind,
                        ),
                        parts,
                    ),
                )
                for a in chosen.agents
            )
        )
        replies += [(a.role, r) for a, r in zip(chosen.agents, agent_replies)]
        record["agents"] = {a.kind: r.text.strip() for a, r in zip(chosen.agents, agent_replies)}
        notes = "\n\n".join(f"[{kind_} agent]\n{text}" for kind_, text in record["agents"].items())
        ask = fill(wf.summary_prompt, media=kind, request=request, notes=notes)
        summary = await self.engine.chat(wf.summary_role, user_message(ask, []))
        replies.append((wf.summary_role, summary))
        record["summary"] = record["caption"] = summary.text.strip()
        if wf.filter_enabled if run_filter is None else run_filter:
            verdict, reply = await self._judge(record["caption"], kind, parts)
            replies.append((wf.filter_role, reply))
            record["filter"] = verdict
        record["usage"] = _usage_by_role(replies)
        return record

    async def judge(self, media: Media, caption: str, *, num_frames: int = 8) -> dict[str, Any]:
        """The quality filter alone, on an existing caption: scores, kept, reason and usage."""
        parts = await asyncio.to_thread(media_parts, media, num_frames)
        verdict, reply = await self._judge(
            caption, "video" if media.modality == "video" else "image", parts
        )
        return {**verdict, "usage": _usage_by_role([(self.workflow.filter_role, reply)])}

    async def _judge(
        self, caption: str, kind: str, parts: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], Reply]:
        dims = self.workflow.filter_dimensions.get(kind)
        if not dims:
            raise WorkflowError(
                f"The workflow's filter has no dimensions for {kind}.",
                hint=f"Add filter.dimensions.{kind} to the workflow.",
            )
        prompt = fill(
            self.workflow.filter_prompt,
            media=kind,
            caption=caption,
            dimensions="\n".join(f"- {d}" for d in dims),
        )

        def scores(text: str) -> dict[str, Any]:
            data = json_object(text)
            given = data.get("scores")
            if not isinstance(given, dict):
                raise ValueError("no 'scores' object")  # noqa: TRY004 - a malformed reply: the re-ask loop catches ValueError
            out = {}
            for d in dims:
                value = given.get(d)
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or value not in (1, 2, 3)
                ):
                    raise ValueError(f"dimension {d!r} scored {value!r}, not 1, 2 or 3")
                out[d] = int(value)
            return {"scores": out, "reason": str(data.get("reason", ""))}

        reply = await self.engine.chat(
            self.workflow.filter_role, user_message(prompt, parts), parse=scores
        )
        verdict = dict(reply.data)
        verdict["kept"] = all(v == FILTER_TOP_MARK for v in verdict["scores"].values())
        return verdict, reply

    def _menu(self) -> str:
        return "\n".join(f"- {d.key}: {d.description}" for d in self.workflow.domains.values())

    def _route(self, text: str) -> tuple[str | None, int]:
        """(domain or None when the router named none of ours, confidence 1-3); ValueError re-asks."""
        data = json_object(text)
        confidence = data.get("confidence")
        if isinstance(confidence, bool) or confidence not in (1, 2, 3):
            raise ValueError(f"confidence {confidence!r} is not 1, 2 or 3")
        domain = str(data.get("domain", "")).strip()
        return (domain if domain in self.workflow.domains else None), int(confidence)


def _usage_by_role(replies: list[tuple[str, Reply]]) -> dict[str, dict[str, Any]]:
    total: dict[str, RoleUsage] = {}
    for role, reply in replies:
        total.setdefault(role, RoleUsage()).add(reply.usage)
    return {role: vars(u) for role, u in total.items()}
