"""Scripted Run Command output on moto: a fake head node.

moto 5.2.5 (pinned) records every SendCommand but answers GetCommandInvocation with status
`Success` and empty output, whatever the script: `moto.ssm.models.Command.get_invocation(instance_id,
plugin_name)` returns one of the dicts `Command.invocation_response` built at SendCommand. It has no
CancelCommand. `FakeHeadNode.install` wraps `Command.get_invocation` so each command answers what a
head node would print for its script (after some polls `InProgress`, if asked). The internals are
checked by tests/test_pins.py::test_the_moto_ssm_internals_we_patch_are_still_there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from moto.ssm.models import Command


@dataclass(frozen=True)
class Reply:
    stdout: str = ""
    status: str = "Success"
    response_code: int = 0
    stderr: str = ""
    polls_in_progress: int = 0
    """GetCommandInvocation answers `InProgress` this many times first."""


@dataclass
class FakeHeadNode:
    responder: Callable[[str], Reply]
    """Script → what the head node answers."""
    scripts: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    _replies: dict[str, Reply] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHeadNode:
        # Imported here: moto's SSM models load its EC2 models, over a second that every test
        # process paid while collecting, whether or not it ran these tests.
        from moto.ssm.models import Command

        original = Command.get_invocation
        fake = self

        def get_invocation(command: Command, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
            invocation = dict(original(command, instance_id, plugin_name))
            if command.command_id not in fake._replies:
                script = command.parameters["commands"][0]
                fake.scripts.append(script)
                fake._replies[command.command_id] = fake.responder(script)
            reply = fake._replies[command.command_id]
            polls = fake.polls[command.command_id] = fake.polls.get(command.command_id, 0) + 1
            if polls <= reply.polls_in_progress:
                invocation.update(Status="InProgress", StatusDetails="InProgress", ResponseCode=-1)
                return invocation
            invocation.update(
                Status=reply.status,
                StatusDetails=reply.status,
                ResponseCode=reply.response_code,
                StandardOutputContent=reply.stdout,
                StandardErrorContent=reply.stderr,
            )
            return invocation

        monkeypatch.setattr(Command, "get_invocation", get_invocation)
        return self
