"""Adapter options: the model a config's ``options:`` must fit, and the message when it does not."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class NoOptions(BaseModel):
    """The options of an adapter that takes none: any option is a mistake."""

    model_config = ConfigDict(extra="forbid")


def options_message(model_id: str, options: type[BaseModel], error: ValidationError) -> str:
    """One line naming each bad option of ``model_id`` and every valid one."""
    problems = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            problems.append(f"unknown option '{name}'")
        elif name:
            problems.append(f"option '{name}': {problem['msg']}")
        else:
            problems.append(str(problem["msg"]).removeprefix("Value error, "))
    valid = ", ".join(sorted(options.model_fields)) or "none"
    return f"model '{model_id}': {'; '.join(problems)}. Valid options: {valid}"
