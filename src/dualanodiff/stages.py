"""A stage call as data: (stage, its arguments as JSON), run through the Python API.

The sweep writes each job's calls into its status file, and a person (or `accelerate launch`) replays one with

    dualanodiff train --config CALL.json                      (or generate / evaluate localization)
    accelerate launch --num_processes 4 -m dualanodiff generate --config CALL.json

where CALL.json is {"stage": ..., "arguments": {...}}: for `train` {"settings": TrainSettings, "out", "resume"},
for `generate` {"run", "out", "settings": GenerateSettings}, for `evaluate_localization` {"data", "layout",
"generated", "out", "object", "device", "settings": LocalizationSettings}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualanodiff.errors import UserError
from dualanodiff.io import read_json

FORMAT = "dualanodiff-stage/1"
# The stage name -> the CLI words that run it.
COMMANDS = {"train": ("train",), "generate": ("generate",),
            "evaluate_localization": ("evaluate", "localization")}


@dataclass(frozen=True)
class StageCall:
    stage: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in COMMANDS:
            raise UserError(f"unknown stage {self.stage!r}; one of {', '.join(COMMANDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "stage": self.stage, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StageCall:
        if not isinstance(data, dict) or not isinstance(data.get("arguments"), dict) or "stage" not in data:
            raise UserError(f"{where}: not a stage call (expected {{\"stage\": ..., \"arguments\": {{...}}}})")
        return cls(data["stage"], data["arguments"])

    def command(self, config_path: str | Path) -> tuple[str, ...]:
        """The dualanodiff command line that replays this call from `config_path`."""
        return (*COMMANDS[self.stage], "--config", str(config_path))


def read_call(path: str | Path, stage: str) -> StageCall:
    """The call stored in `path` (a stage call file, or a sweep job's status file holding one for `stage`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config {path}: file not found")
    data = read_json(path)
    calls = data.get("calls") if isinstance(data, dict) and "calls" in data else [data]
    matching = [call for call in calls if isinstance(call, dict) and call.get("stage") == stage]
    if not matching:
        raise UserError(f"--config {path}: holds no {stage} call")
    return StageCall.from_dict(matching[0], str(path))


def _argument(call: StageCall, name: str) -> Any:
    if name not in call.arguments:
        raise UserError(f"{call.stage} call: has no {name!r} argument")
    return call.arguments[name]


def run_call(call: StageCall) -> Any:
    """Run one stage through the Python API (under `accelerate launch`, this process's share of it)."""
    if call.stage == "train":
        from dualanodiff.training import TrainSettings, train

        settings = TrainSettings.from_dict(_argument(call, "settings"), where="train call: settings")
        return train(settings, _argument(call, "out"), resume=bool(call.arguments.get("resume", False)))
    if call.stage == "generate":
        from dualanodiff.generation import GenerateSettings, generate

        settings = GenerateSettings.from_dict(_argument(call, "settings"), where="generate call: settings")
        return generate(_argument(call, "run"), _argument(call, "out"), settings, **process_share())
    from dualanodiff.data import load_source
    from dualanodiff.evaluate.localization import evaluate_localization
    from dualanodiff.evaluate.settings import LocalizationSettings

    settings = LocalizationSettings.from_dict(_argument(call, "settings"), where="evaluate_localization call: "
                                                                                  "settings")
    source = load_source(_argument(call, "data"), call.arguments.get("layout"))
    return evaluate_localization(source, _argument(call, "generated"), _argument(call, "out"),
                                 object=call.arguments.get("object"), settings=settings,
                                 device=call.arguments.get("device"))


def process_share() -> dict[str, int]:
    """This process's index and the process count under `accelerate launch` / torchrun (else 0 of 1)."""
    return {"process_index": int(os.environ.get("RANK", 0)), "num_processes": int(os.environ.get("WORLD_SIZE", 1))}
