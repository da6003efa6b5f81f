"""One settings source: every SandboxPolicy and AgentSettings field is a CodeAgent trait, checked at %config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from traitlets import TraitError
from traitlets.config import Config

from codeagent.agent.loop import AgentSettings
from codeagent.kernel_ext.magic import CodeAgent
from codeagent.kernel_ext.settings import PER_CALL, agent_settings, trait_name
from codeagent.sandbox.host.policy import SandboxPolicy


@pytest.fixture
def agent() -> Iterator[CodeAgent]:
    magic = CodeAgent(shell=None, warm_start=False)
    yield magic
    magic.close()


@pytest.mark.parametrize("model", [SandboxPolicy, AgentSettings])
def test_every_field_is_a_configurable_trait_with_its_default_and_help(model: type) -> None:
    traits = CodeAgent.class_traits(config=True)
    for field, info in model.model_fields.items():
        if model is AgentSettings and field in PER_CALL:
            continue  # decided per call (profile from model_profile and the base URL)
        trait = traits[trait_name(model, field)]
        assert trait.default_value == info.default, field
        assert trait.help and trait.help == info.description, field


def test_the_models_are_derived_from_the_traits(agent: CodeAgent) -> None:
    assert agent.policy() == SandboxPolicy()
    assert agent_settings(agent) == AgentSettings()
    agent.update_config(
        Config({"CodeAgent": {"memory_mb": 4096, "sandbox_uid": 1234, "timeout": 7.5, "sandbox_mode": "landlock"}})
    )
    agent.max_processes = 32
    agent.output_chars = 999
    policy = agent.policy()
    assert (policy.memory_mb, policy.sandbox_uid, policy.wall_seconds, policy.mode) == (4096, 1234, 7.5, "landlock")
    assert policy.max_processes == 32 and policy.output_chars == 999
    assert agent_settings(agent).output_chars == 999


def test_per_call_options_override_the_configuration(agent: CodeAgent) -> None:
    agent.timeout = 30.0
    agent.model = "claude-configured"
    assert agent.policy(wall_seconds=3.0).wall_seconds == 3.0
    assert agent.policy(wall_seconds=None).wall_seconds == 30.0
    settings = agent_settings(agent, model="claude-per-call", max_steps=None)
    assert (settings.model, settings.max_steps) == ("claude-per-call", AgentSettings().max_steps)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("memory_mb", 10, "greater than or equal to 64"),
        ("timeout", 0.0, "greater than 0"),
        ("max_steps", 0, "greater than or equal to 1"),
        ("sandbox_mode", "docker", "expected any of"),
        ("cassette_mode", "sometimes", "expected any of"),
        ("bridge_reply_mb", -1, "greater than or equal to 1"),
    ],
)
def test_a_bad_value_is_refused_when_it_is_set(agent: CodeAgent, name: str, value: object, says: str) -> None:
    before = getattr(agent, name)
    with pytest.raises(TraitError, match=says):
        setattr(agent, name, value)
    assert getattr(agent, name) == before
    with pytest.raises(TraitError, match=says):  # as %config and a config file set it
        agent.update_config(Config({"CodeAgent": {name: value}}))
    assert getattr(agent, name) == before


def test_a_bad_value_in_a_config_file_fails_the_load() -> None:
    """Not swallowed at load and reported later: loading the extension with it raises, naming the setting."""
    config = Config({"CodeAgent": {"warm_start": False, "sandbox_mode": "docker"}})
    with pytest.raises(TraitError, match="sandbox_mode"):
        CodeAgent(shell=None, config=config)
