"""One settings source: the ``CodeAgent`` traits, built from the fields of the models they feed.

:class:`~codeagent.sandbox.host.policy.SandboxPolicy` and :class:`~codeagent.agent.loop.AgentSettings` define
each setting once (type, default, limits, help). :func:`setting` turns a field into a configurable trait with
that default and help, validated against the field's limits at ``%config`` time (and when a config file is
loaded); :func:`sandbox_policy` and :func:`agent_settings` derive the models from the traits, per-call options
on top.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from traitlets import Bool, Enum, Float, HasTraits, Int, TraitError, TraitType, Unicode

from codeagent.agent.loop import AgentSettings
from codeagent.sandbox.host.policy import SandboxPolicy

#: Trait names that differ from the field they set (the rest are the same).
TRAIT_NAMES = {
    SandboxPolicy: {
        "mode": "sandbox_mode",
        "wall_seconds": "timeout",
        "allow_root": "sandbox_allow_root",
        "allow_no_seccomp": "sandbox_allow_no_seccomp",
    },
    AgentSettings: {},
}
#: Fields decided per call from other traits (``profile`` from ``model_profile`` and the base URL).
PER_CALL = {"profile", "answer_from_output"}


def trait_name(model: type[BaseModel], field: str) -> str:
    return TRAIT_NAMES[model].get(field, field)


def setting(model: type[BaseModel], field: str) -> TraitType[Any, Any]:
    """A ``config=True`` trait for ``model.field``: same default and help; values checked by the field."""
    info = model.model_fields[field]
    annotation, default, text = info.annotation, info.default, info.description or ""
    trait: TraitType[Any, Any]
    if get_origin(annotation) is Literal:
        trait = Enum(list(get_args(annotation)), default_value=default, help=text)
    elif annotation is bool:
        trait = Bool(default, help=text)
    elif annotation is int:
        trait = Int(default, help=text)
    elif annotation is float:
        trait = Float(default, help=text)
    elif annotation is str:
        trait = Unicode(default, help=text)
    else:  # a field of a new type needs a line here
        raise TypeError(f"no trait for {model.__name__}.{field}: {annotation}")
    return trait.tag(config=True, codeagent_field=(model, field))


def check(trait: TraitType[Any, Any], value: Any) -> Any:
    """``value`` validated by the model field behind ``trait`` (its limits), or a short TraitError."""
    model, field = trait.metadata["codeagent_field"]
    info = model.model_fields[field]
    try:
        return TypeAdapter(Annotated[info.annotation, info]).validate_python(value)
    except ValidationError as e:
        reason = e.errors()[0]["msg"]
        raise TraitError(f"CodeAgent.{trait.name} = {value!r}: {reason[0].lower()}{reason[1:]}") from None


def _values(config: HasTraits, model: type[BaseModel], overrides: dict[str, Any]) -> dict[str, Any]:
    fields = [f for f in model.model_fields if not (model is AgentSettings and f in PER_CALL)]
    values = {field: getattr(config, trait_name(model, field)) for field in fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def sandbox_policy(config: HasTraits, **overrides: Any) -> SandboxPolicy:
    """The sandbox policy the traits describe; non-None ``overrides`` (per-call options) win."""
    return SandboxPolicy.model_validate(_values(config, SandboxPolicy, overrides))


def agent_settings(config: HasTraits, **overrides: Any) -> AgentSettings:
    """The agent settings the traits describe; non-None ``overrides`` (per-call options) win."""
    return AgentSettings.model_validate(_values(config, AgentSettings, overrides))


def setting_names() -> list[str]:
    """The trait name of every field of both models (what ``CodeAgent`` must define)."""
    names = [
        trait_name(model, field)
        for model in (SandboxPolicy, AgentSettings)
        for field in model.model_fields
        if not (model is AgentSettings and field in PER_CALL)
    ]
    return list(dict.fromkeys(names))
