"""A CapFlow workflow read from YAML: endpoints, roles, the router, domains with their agents, the
summary and the quality filter. Every mistake is a `WorkflowError` naming the key at fault.

Prompts fill only their own placeholders (`{media}`, `{domains}`, `{kind}`, `{task}`, ...), so
braces elsewhere in a prompt (JSON examples) need no escaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from anycap_plugin import AnyCapError
from anycap_plugin.call_engine import Endpoint, Role

AGENT_KINDS = ("guideline", "perception", "reasoning", "tools")


class WorkflowError(AnyCapError):
    """A workflow file that cannot be used as written."""


@dataclass(frozen=True)
class Agent:
    kind: str
    task: str
    role: str


@dataclass(frozen=True)
class Domain:
    key: str
    description: str
    agents: tuple[Agent, ...]


@dataclass(frozen=True)
class Workflow:
    name: str
    endpoints: dict[str, Endpoint]
    roles: dict[str, Role]
    router_role: str
    router_prompt: str
    default_domain: str
    min_confidence: int
    domains: dict[str, Domain]
    agent_prompt: str
    summary_role: str
    summary_prompt: str
    filter_role: str
    filter_enabled: bool
    filter_dimensions: dict[str, tuple[str, ...]]
    filter_prompt: str


def default_path() -> Path:
    return Path(str(resources.files("anycap_capflow") / "default_workflow.yaml"))


def load_workflow(
    path: str | Path | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    model: str | None = None,
    concurrency: int | None = None,
) -> Workflow:
    """Read a workflow (the default one when `path` is None). `base_url`, `api_key_env` and
    `concurrency` override the `default` endpoint; `model` fills every role that names none."""
    import yaml

    path = Path(path) if path is not None else default_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise WorkflowError(
            f"Cannot read workflow {path}: {e}.", hint="Check the path after 'capflow:'."
        ) from None
    except yaml.YAMLError as e:
        raise WorkflowError(f"{path} is not valid YAML: {e}", hint="Fix the line shown.") from None
    if not isinstance(raw, dict):
        raise WorkflowError(
            f"{path} must hold a mapping (endpoints, roles, router, domains, agent, summary, filter)."
        )
    return _parse(raw, str(path), base_url, api_key_env, model, concurrency)


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise WorkflowError(
            f"{where}: '{key}' must be a mapping.", hint="See the default workflow for its shape."
        )
    return value


def _text(section: dict[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise WorkflowError(f"{where}: '{key}' must be a non-empty string.")
    return value


def _parse(
    raw: dict[str, Any],
    where: str,
    base_url: str | None,
    api_key_env: str | None,
    model: str | None,
    concurrency: int | None,
) -> Workflow:
    endpoints = {}
    for name, spec in _section(raw, "endpoints", where).items():
        spec = dict(spec or {})
        if name == "default":
            spec.update(
                {
                    k: v
                    for k, v in (
                        ("base_url", base_url),
                        ("api_key_env", api_key_env),
                        ("concurrency", concurrency),
                    )
                    if v is not None
                }
            )
        try:
            endpoints[name] = Endpoint(**spec)
        except TypeError as e:
            raise WorkflowError(
                f"{where}: endpoint {name!r}: {e}.",
                hint="Keys: base_url, api_key_env, concurrency, timeout, max_retries.",
            ) from None
    roles = {}
    for name, spec in _section(raw, "roles", where).items():
        spec = dict(spec or {})
        spec["model"] = spec.get("model") or model
        if not spec["model"]:
            raise WorkflowError(
                f"{where}: role {name!r} has no model.",
                hint="Pass model=... (e.g. `-O model=gpt-4.1-mini`) or set roles.<role>.model.",
            )
        if spec.get("endpoint", "default") not in endpoints:
            raise WorkflowError(
                f"{where}: role {name!r} names unknown endpoint {spec.get('endpoint')!r}.",
                hint="Endpoints: " + ", ".join(sorted(endpoints)) + ".",
            )
        try:
            roles[name] = Role(**spec)
        except TypeError as e:
            raise WorkflowError(
                f"{where}: role {name!r}: {e}.",
                hint="Keys: endpoint, model, temperature, max_tokens, price_in, price_out.",
            ) from None

    def role_of(section: dict[str, Any], label: str, default: str) -> str:
        role = section.get("role", default)
        if role not in roles:
            raise WorkflowError(
                f"{where}: {label} uses unknown role {role!r}.",
                hint="Roles: " + ", ".join(sorted(roles)) + ".",
            )
        return role

    router, agent, summary, judge = (
        _section(raw, k, where) for k in ("router", "agent", "summary", "filter")
    )
    kinds = raw.get("agent_kinds") or {}
    domains = {}
    for key, spec in _section(raw, "domains", where).items():
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("agents"), dict)
            or not spec["agents"]
        ):
            raise WorkflowError(
                f"{where}: domain {key!r} needs a description and a mapping of agents."
            )
        agents = []
        for kind, task in spec["agents"].items():
            if kind not in AGENT_KINDS and kind not in kinds:
                raise WorkflowError(
                    f"{where}: domain {key!r} has unknown agent {kind!r}.",
                    hint="Agents: " + ", ".join(AGENT_KINDS) + " (or declare it in agent_kinds).",
                )
            task_text, agent_role = (
                (task.get("task"), task.get("role", agent.get("role", "agent")))
                if isinstance(task, dict)
                else (task, agent.get("role", "agent"))
            )
            if agent_role not in roles:
                raise WorkflowError(
                    f"{where}: agent {key}.{kind} uses unknown role {agent_role!r}."
                )
            agents.append(Agent(kind, str(task_text or kinds.get(kind, "")), agent_role))
        domains[key] = Domain(
            key, _text(spec, "description", f"{where}: domain {key!r}"), tuple(agents)
        )
    default_domain = router.get("default_domain")
    if default_domain not in domains:
        raise WorkflowError(
            f"{where}: router.default_domain {default_domain!r} is not a domain.",
            hint="Domains: " + ", ".join(domains) + ".",
        )
    dims = judge.get("dimensions") or {}
    return Workflow(
        name=str(raw.get("name") or Path(where).stem),
        endpoints=endpoints,
        roles=roles,
        router_role=role_of(router, "router", "router"),
        router_prompt=_text(router, "prompt", f"{where}: router"),
        default_domain=default_domain,
        min_confidence=int(router.get("min_confidence", 2)),
        domains=domains,
        agent_prompt=_text(agent, "prompt", f"{where}: agent"),
        summary_role=role_of(summary, "summary", "summary"),
        summary_prompt=_text(summary, "prompt", f"{where}: summary"),
        filter_role=role_of(judge, "filter", "judge"),
        filter_enabled=bool(judge.get("enabled", True)),
        filter_dimensions={m: tuple(d) for m, d in dims.items()},
        filter_prompt=_text(judge, "prompt", f"{where}: filter"),
    )
