"""Generation: `DualAnoDiffPipeline`, built from a run folder, denoises both branches of many samples together.

    pipe = DualAnoDiffPipeline.from_pretrained("runs/washer-rust")
    out = pipe(range(16), seed=0)          # out.images, out.anomaly_parts, out.masks, out.records

Sample i depends only on (seed, i): its starting noise comes from a generator seeded by both, so a sample is the same
whatever the batch it is made in, and an interrupted job can make exactly the missing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, PNDMScheduler
from tqdm.auto import tqdm

from dualanodiff.data import to_uint8
from dualanodiff.devices import resolve_device
from dualanodiff.errors import ModelError, UserError
from dualanodiff.generation.backgrounds import BackgroundBank
from dualanodiff.generation.settings import CanvasChoices
from dualanodiff.generation.windows import WindowCanvas
from dualanodiff.masks.anomaly import Segmenter, load_segmenter, mask_figures
from dualanodiff.model.attention import AttentionStore
from dualanodiff.model.base import load_base_model, move_frozen
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.model.streams import BRANCHES
from dualanodiff.training.run import Run

# Each sampler and the prediction types its diffusers step serves (PNDM's has no x0 form: the tiny preset's base).
SCHEDULERS = {"ddim": (DDIMScheduler, ("epsilon", "v_prediction", "sample")),
              "dpm": (DPMSolverMultistepScheduler, ("epsilon", "v_prediction", "sample")),
              "pndm": (PNDMScheduler, ("epsilon", "v_prediction"))}


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The random generator of sample `index`: a function of (seed, index) alone."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))


@dataclass
class GenerationOutput:
    images: list[np.ndarray] = field(default_factory=list)  # uint8 HxWx3: the anomaly image I
    anomaly_parts: list[np.ndarray] = field(default_factory=list)  # uint8 HxWx3: I_a, black outside the anomaly
    masks: list[np.ndarray] = field(default_factory=list)  # bool HxW
    records: list[dict[str, Any]] = field(default_factory=list)  # seed, figures, background


@dataclass
class BackgroundStream:
    """BCM's background stream of a batch: clean latents of the unconditional and the real backgrounds (2 b),
    noised to each step's level from each sample's own generator, afresh at every step (the released code) or with
    one noise drawn at the first step."""

    clean: torch.Tensor
    generators: list[torch.Generator]
    per_step: bool
    noise: torch.Tensor | None = None

    def at(self, scheduler: DDPMScheduler, t: torch.Tensor) -> torch.Tensor:
        if self.noise is None or self.per_step:
            draws = torch.stack([torch.randn(self.clean.shape[1:], generator=g) for g in self.generators])
            self.noise = draws.to(self.clean.device, self.clean.dtype).repeat(2, 1, 1, 1)
        return scheduler.add_noise(self.clean, self.noise, t.expand(len(self.clean)))


class DualAnoDiffPipeline:
    def __init__(self, model: DualAnoDiffModel, run: Run, *, scheduler: str = "ddim",
                 backgrounds: BackgroundBank | None = None):
        if scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        self.model = model.eval()
        self.run = run
        self.config = run.settings
        self.scheduler_name = scheduler
        scheduler_class, served = SCHEDULERS[scheduler]
        prediction = model.noise_scheduler.config.prediction_type
        if prediction not in served:
            able = [name for name, (_, types) in SCHEDULERS.items() if prediction in types]
            hint = f"choose --scheduler {' or '.join(able)}" if able else f"none of {', '.join(SCHEDULERS)} can"
            raise ModelError(f"--scheduler {scheduler} cannot serve this run's base model, which predicts "
                             f"{prediction!r} (prediction_type); {hint}")
        self.scheduler = scheduler_class.from_config(model.scheduler_config)
        self.noise_scheduler = DDPMScheduler.from_config(model.scheduler_config)
        self.backgrounds = backgrounds
        self.canvas = WindowCanvas(run) if run.settings.windowed else None
        if self.canvas is not None and backgrounds is not None and backgrounds.run.root != run.root:
            raise UserError("--backgrounds: a window-canvas run draws into its own normal images and measures "
                            "against their backgrounds; another run's cannot be used")

    @classmethod
    def from_pretrained(cls, run: Run | str | Path, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, scheduler: str = "ddim",
                        backgrounds: Run | str | Path | None = None, fuse: bool = True,
                        compile: bool = False) -> DualAnoDiffPipeline:
        """The trained model of a run, on `device` in `dtype` (bf16 on a GPU). `fuse` folds each branch's LoRA into
        its own copy of the projections (the adapters are fixed now); `compile` runs the UNet under torch.compile;
        `backgrounds`: a BCM run to condition on or measure against (default: the run's own, with BCM)."""
        run = (run if isinstance(run, Run) else Run.open(run)).require_complete()
        model = DualAnoDiffModel.from_pretrained(run.root, load_base_model(run.base_model), run.settings.model)
        device = resolve_device(device)
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        move_frozen([model], device, dtype)  # the adapters are fixed now: everything in the inference dtype
        if fuse:
            model.fuse_adapters()
        if compile:
            model.unet.compile()  # compiles at the first call (and again for a new batch size)
        if backgrounds is not None:
            backgrounds = backgrounds if isinstance(backgrounds, Run) else Run.open(backgrounds)
        bank_run = backgrounds or (run if run.settings.model.bcm else None)
        bank = BackgroundBank(bank_run) if bank_run is not None else None
        return cls(model, run, scheduler=scheduler, backgrounds=bank)

    @property
    def device(self) -> torch.device:
        return next(self.model.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.unet.parameters()).dtype

    @torch.no_grad()
    def __call__(self, indices: Iterable[int] | int, *, seed: int = 0, steps: int = 50, guidance: float = 2.5,
                 segmenter: Segmenter | str = "threshold", background_every: int = 50,
                 placements: Sequence[dict[str, Any]] | None = None, bcm_unconditional: str = "grey",
                 bcm_noise: str = "per_step", canvas: CanvasChoices | None = None,
                 progress: bool = True) -> GenerationOutput:
        """Samples `indices` of `seed`. A window-canvas run draws each into a window of a normal image: its own
        (from seed and index), or the one in `placements` (a sample's record: `normal`, `window`, `example` and,
        with a strength below 1, `start`), as `canvas` says (None: the canvas's defaults; e.g.
        `CanvasChoices.resolve(windowed=True, strength=0.4)`); BCM's options and the canvas's: see
        `GenerateSettings`."""
        indices = list(range(indices)) if isinstance(indices, int) else list(indices)
        if isinstance(segmenter, str):
            segmenter = load_segmenter(segmenter)
        model = self.model
        latent_shape = (model.unet.config.in_channels, *[self.config.resolution // model.codec.downscale] * 2)
        generators = [sample_generator(seed, index) for index in indices]
        # Branch noise first, then the background's, from each sample's own generator.
        latents = torch.stack([torch.randn((BRANCHES, *latent_shape), generator=g) for g in generators])
        latents = latents.to(self.device, self.dtype) * self.scheduler.init_noise_sigma
        choices = CanvasChoices.resolve(self.canvas is not None, **asdict(canvas) if canvas is not None else {})
        records = self._place(indices, seed, placements, choices)
        first = 0
        if choices.starting:
            latents, first = self._start(latents, records, indices, steps, choices.strength)
        background = None
        background_pixels = self._backgrounds(records, indices, seed, background_every)
        if background_pixels is not None and model.config.bcm:
            background = BackgroundStream(self._background_latents(background_pixels, bcm_unconditional),
                                          generators, per_step=bcm_noise == "per_step")
        store = (AttentionStore(model.anomaly_token_indices(), self.config.resolution)
                 if segmenter.needs_attention else None)
        latents = self._denoise(latents, background, steps=steps, guidance=guidance, store=store,
                                progress=progress, indices=indices, first=first)
        pixels = model.codec.decode(latents.flatten(0, 1))
        decoded = to_uint8(pixels).reshape(len(indices), BRANCHES, *pixels.shape[2:], 3)
        attention = store.maps()[-len(indices):].float().cpu().numpy() if store is not None else None
        output = GenerationOutput()
        for k, index in enumerate(indices):
            image, part = decoded[k, 0], decoded[k, 1]
            mask = np.asarray(segmenter(image, part, attention[k] if attention is not None else None), bool)
            figures = mask_figures(image, part, mask)  # (the branches compared where they drew)
            if self.canvas is not None:
                image, part, mask = self.canvas.compose(records[k], image, mask, colours=choices.colours)
                figures["mask_area"] = float(mask.mean())
            output.images.append(image)
            output.anomaly_parts.append(part)
            output.masks.append(mask)
            record = {"index": index, **records[k], **figures}
            if self.backgrounds is not None:
                record["background_preservation"] = self.backgrounds.preservation(image, record["background"])
            output.records.append(record)
        return output

    def _place(self, indices: list[int], seed: int, placements: Sequence[dict[str, Any]] | None,
               choices: CanvasChoices) -> list[dict[str, Any]]:
        """Each sample's record so far: its seed and, on a window canvas, its normal image, window and training
        anomaly (`example`), and with a start its start (`WindowCanvas.place`)."""
        if self.canvas is None:
            return [{"seed": seed} for _ in indices]
        if placements is None:
            placements = [self.canvas.place(index, seed, choices) for index in indices]
        keys = ("normal", "window", "example", "start")
        return [{"seed": seed, **{key: p[key] for key in keys if key in p}} for p in placements]

    def _start(self, noise: torch.Tensor, records: list[dict[str, Any]], indices: list[int], steps: int,
               strength: float) -> tuple[torch.Tensor, int]:
        """The starting latents (SDEdit): each sample's training-anomaly window (its record's `start`), noised with
        the sample's own noise to the timestep `strength` of the way into the schedule; and that timestep's index."""
        missing = [index for index, record in zip(indices, records, strict=True) if "start" not in record]
        if missing:
            raise UserError(f"sample(s) {', '.join(map(str, missing))}: a placement without a start cannot be made "
                            "again with a strength below 1 (its record has no \"start\")")
        pixels = self.canvas.start_windows([record["start"] for record in records])
        clean = self.model.codec.encode(pixels.flatten(0, 1).to(self.device, self.dtype)).view_as(noise)
        self.scheduler.set_timesteps(steps, device=self.device)
        first = min(steps - 1, round(steps * (1 - strength)))
        t = self.scheduler.timesteps[first]
        return self.noise_scheduler.add_noise(clean, noise, t.expand(len(clean))), first

    def _backgrounds(self, records: list[dict[str, Any]], indices: list[int], seed: int,
                     every: int) -> torch.Tensor | None:
        """The backgrounds the samples condition on or are measured against (their names go into the records):
        a window canvas's are the windows of its normal images' backgrounds."""
        if self.backgrounds is None:
            return None
        if self.canvas is not None:
            names = [record["normal"] for record in records]
            pixels = self.canvas.crop([self.backgrounds.image(name) for name in names], records)
        else:
            pixels, names = self.backgrounds.for_samples(indices, seed, every)
        for record, name in zip(records, names, strict=True):
            record["background"] = name
        return pixels

    def _denoise(self, latents: torch.Tensor, background: BackgroundStream | None, *,
                 steps: int, guidance: float, store: AttentionStore | None, progress: bool,
                 indices: list[int], first: int = 0) -> torch.Tensor:
        """Both branches' latents (b, 2, C, h, w) denoised together from the `first` timestep on, with BCM's
        background stream."""
        model, streams = self.model, self.model.config.num_streams
        groups, latent_shape = latents.shape[0], latents.shape[2:]
        guided = guidance != 1.0
        text = model.text_embeddings(groups)
        if guided:
            text = torch.cat([model.text_embeddings(groups, unconditional=True), text])
        self.scheduler.set_timesteps(steps, device=self.device)
        for step, t in enumerate(tqdm(self.scheduler.timesteps[first:], desc="denoising", disable=not progress,
                                      leave=False), start=first):
            branches = self.scheduler.scale_model_input(latents, t)
            halves = [branches, branches] if guided else [branches]  # unconditional half first
            if background is not None:
                noisy = background.at(self.noise_scheduler, t)
                # The unconditional half sees the all-zero image's background, the conditional half the real one.
                backgrounds = [noisy[:groups], noisy[groups:]] if guided else [noisy[groups:]]
                halves = [torch.cat([half, stream[:, None]], dim=1)
                          for half, stream in zip(halves, backgrounds, strict=True)]
            batch = torch.cat(halves)
            prediction = model.predict(batch.flatten(0, 1), t.expand(batch.shape[0] * streams), text, store)
            prediction = prediction.view(batch.shape[0], streams, *latent_shape)[:, :BRANCHES]
            if guided:
                unconditional, conditional = prediction.chunk(2)
                prediction = unconditional + guidance * (conditional - unconditional)
            latents = self.scheduler.step(prediction.flatten(0, 1), t, latents.flatten(0, 1)).prev_sample
            latents = latents.view(groups, BRANCHES, *latent_shape)
            finite = torch.isfinite(latents.flatten(1)).all(dim=1)
            if not finite.all():  # NaN weights or an overflow: stop rather than write black images
                bad = [index for index, ok in zip(indices, finite.tolist(), strict=True) if not ok]
                raise ModelError(f"denoising step {step + 1} of {steps}: the model produced non-finite values "
                                 f"for sample(s) {', '.join(map(str, bad))}; check the run's weights "
                                 "and the guidance scale")
        return latents

    def _background_latents(self, pixels: torch.Tensor, unconditional: str) -> torch.Tensor:
        """Background latents (2 b): classifier-free guidance's unconditional backgrounds first (an all-zero image
        in [-1, 1], mid-grey, as the released code has it; or black), then the real ones."""
        empty = torch.full_like(pixels, 0.0 if unconditional == "grey" else -1.0)
        return self.model.codec.encode(torch.cat([empty, pixels]).to(self.device, self.dtype))
