"""Generation settings as data (no torch here): what `dualanodiff generate` makes from a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from dualanodiff.errors import UserError
from dualanodiff.settings import Settings, setting

SCHEDULER_NAMES = ("ddim", "dpm", "pndm")
GUIDANCE, BCM_GUIDANCE = 2.5, 2.0  # the released code generates with 2.0 when BCM is on
WINDOW_STRENGTH = 0.6  # a window canvas's default start (README, "Starting from a training anomaly")
COLOURS = ("drawn", "training", "start")
WINDOW_COLOURS = "start"  # a window canvas's default anomaly colours (README, "Start colours")
WINDOW_COLOURS_WITHOUT_START = "training"  # and its default at strength 1, with no start to take them from
WINDOW_SIZE_SPREAD = 0.5  # a window canvas's default: areas from half to twice the training ones' (README, "Sizes")
WINDOW_TURNS = 1  # a window canvas's default turns of a start tried at each place (README, "Turns")
WINDOW_POSITION_WIDTH = 0.03  # a window canvas's default: places near the training anomaly's (README, "Positions")
ORIENTATIONS = ("training", "any")
WINDOW_ORIENTATIONS = "training"  # a window canvas's default start orientations (README, "Orientations")


# Each window-canvas choice: its option, the window canvas's default, the whole-image canvas's own value (the only
# one it takes), and what the choice needs that only windows have.
CANVAS_OPTIONS = {
    "strength": ("--strength", WINDOW_STRENGTH, 1.0, "a start from training anomalies' windows"),
    "colours": ("--colours", WINDOW_COLOURS, "drawn", "painting with a training anomaly's colours"),
    "size_spread": ("--size-spread", WINDOW_SIZE_SPREAD, 0.0, "scaling the anomaly's window"),
    "turns": ("--turns", WINDOW_TURNS, 1, "turning a training anomaly's window"),
    "position_width": ("--position-width", WINDOW_POSITION_WIDTH, 0.0,
                       "placing an anomaly where its training anomaly lies"),
    "orientations": ("--orientations", WINDOW_ORIENTATIONS, "training", "turning and mirroring a start"),
}


@dataclass(frozen=True)
class CanvasChoices:
    """How a canvas draws, each choice filled in (`resolve`): the strength of the start (1: from pure noise, no
    start), the anomaly's colours, the size spread, the turns of a start tried at each place and the width of the
    position prior, and the orientations a start takes (`GenerateSettings` says what each does)."""

    strength: float = 1.0
    colours: str = "drawn"
    size_spread: float = 0.0
    turns: int = 1
    position_width: float = 0.0
    orientations: str = "training"

    @classmethod
    def resolve(cls, windowed: bool, **given) -> CanvasChoices:
        """The choices of `given` (None or left out: the canvas's default) for a run on windows or whole images. A
        value other than the whole-image canvas's own is refused on whole images, in one line."""
        unknown = set(given) - set(CANVAS_OPTIONS)
        if unknown:
            raise TypeError(f"unknown canvas choice(s): {', '.join(sorted(unknown))}")
        for name, allowed in (("colours", COLOURS), ("orientations", ORIENTATIONS)):
            if given.get(name) not in (None, *allowed):
                raise UserError(f"{CANVAS_OPTIONS[name][0]} must be one of {', '.join(allowed)}, got {given[name]!r}")
        choices = {}
        for name, (option, on_windows, on_images, needs) in CANVAS_OPTIONS.items():
            value = given.get(name)
            if value is not None and value != on_images and not windowed:
                raise UserError(f"{option} {value}: {needs} needs a window-canvas run, and this one draws whole "
                                "images (train with --canvas window)")
            choices[name] = (on_windows if windowed else on_images) if value is None else value
        if choices["strength"] == 1:  # no start: no pixels of its own to paint with, nothing to turn
            if windowed and given.get("colours") is None:
                choices["colours"] = WINDOW_COLOURS_WITHOUT_START
            if choices["orientations"] != "training":
                raise UserError(f"--orientations {choices['orientations']}: turning and mirroring a start needs a "
                                "start (--strength below 1)")
            if choices["colours"] == "start":
                raise UserError("--colours start: painting with the start's own pixels needs a start "
                                "(--strength below 1)")
            if choices["turns"] > 1:
                raise UserError(f"--turns {choices['turns']}: turning a start needs a start (--strength below 1)")
        return cls(**choices)

    @property
    def starting(self) -> bool:
        """Whether the denoising starts from a training anomaly's window."""
        return self.strength < 1


@dataclass
class GenerateSettings(Settings):
    """N (image, anomaly part, mask) triplets from a run. Sample i depends on (seed, i) alone; `batch_size`,
    `device` and `compile` change only the speed (and, on a CPU, float sums in their last bits)."""

    num: int = setting(minimum=1)
    steps: int = setting(50, minimum=1)  # denoising steps
    guidance: float | None = setting(None, minimum=0)  # classifier-free guidance; None: 2.0 with BCM, else 2.5
    batch_size: int = setting(8, minimum=1)
    seed: int = 0
    mask_method: str = "threshold"  # threshold, attention, or module.path:factory
    scheduler: str = setting("ddim", choices=SCHEDULER_NAMES)
    background_every: int = setting(50, minimum=1)  # BCM: a new background every K samples
    backgrounds: str | None = None  # a BCM run whose backgrounds the samples are measured against
    device: str | None = None  # default: CUDA when present
    export_mvtec: str | None = None  # also write the pairs in MVTec AD layout under this root
    export_anomalib: str | None = None  # also write them in anomalib's Folder layout under this root
    compile: bool = False  # torch.compile the UNet
    # BCM at generation (README, "BCM"): what the unconditional half of guidance sees as its background, an
    # all-zero image in [-1, 1] (grey, the released code's) or black; and whether the background stream is noised
    # afresh at every step (the released code) or with one noise per sample.
    bcm_unconditional: str = setting("grey", choices=("grey", "black"))
    bcm_noise: str = setting("per_step", choices=("per_step", "fixed"))
    # 1 denoises from pure noise (the paper); below 1, on a window canvas, from a training anomaly's window noised
    # to that share of the schedule (SDEdit), so that what is drawn keeps a real anomaly's shape. None: the
    # canvas's choice, WINDOW_STRENGTH on windows and 1 on whole images.
    strength: float | None = setting(None, above=0, maximum=1)
    # On a window canvas, the anomaly's pixels as the model drew them ("drawn"); painted with the colours of the
    # training anomaly the sample was matched with, in the order of the drawn pixels' brightness ("training": a small
    # model draws the shape but washes out the colours); or taken from the start's own real pixels, each from the
    # nearest pixel of the start's anomaly ("start": the texture too; needs a strength below 1). None: the canvas's
    # choice, WINDOW_COLOURS on windows (WINDOW_COLOURS_WITHOUT_START at strength 1), drawn on whole images.
    colours: str | None = setting(None, choices=COLOURS)
    # On a window canvas, the drawn anomaly's window is scaled by 2^u, u uniform in [-size_spread, size_spread], so
    # that anomalies come in more sizes than the few training ones have (0: their sizes, jittered by 15 %). None:
    # the canvas's choice, WINDOW_SIZE_SPREAD on windows and 0 on whole images.
    size_spread: float | None = setting(None, minimum=0, maximum=2)
    # On a window canvas with a start, the start is tried at each place turned by every 360/turns degrees and the
    # best place and turn kept, so that on an object lying at any angle the anomaly sits across it as its training
    # anomaly did (1: unturned). None: the canvas's choice, WINDOW_TURNS on windows and 1 on whole images.
    turns: int | None = setting(None, minimum=1, maximum=360)
    # On a window canvas with object masks, places are drawn near where the sample's training anomaly lies on its
    # own object (along a screw from its head, out from a round object's centre), within about this share of the
    # object's length (0: anywhere on the object). None: the canvas's choice, WINDOW_POSITION_WIDTH on windows.
    position_width: float | None = setting(None, minimum=0, maximum=1)
    # On a window canvas with a start, each start takes one of the eight quarter turns and mirrorings of its
    # training anomaly's window at random ("any", as croppaste turns its pastes), so that 8 training anomalies give
    # 64 orientations in the image; "training": as the training anomaly lies (and its flips where the run trained
    # with them). None: the canvas's choice, WINDOW_ORIENTATIONS ("training" everywhere, README "Orientations").
    orientations: str | None = setting(None, choices=ORIENTATIONS)
    # Sample QC (generation/qc.py): off keeps every sample; on replaces a rejected one by the next seeds.
    qc: str = setting("on", choices=("off", "on"))
    qc_max_tries: int = setting(10, minimum=1)  # seeds tried per sample before it is given up
    qc_area_margin: float = setting(2.0, minimum=1)  # the training masks' area range, widened this much each way
    qc_max_off_object: float = setting(0.05, minimum=0, maximum=1)  # of the mask, outside the object
    qc_max_disagreement: float = setting(0.25, minimum=0, maximum=1)  # mean |I - I_a| inside the mask, 0..1

    def for_run(self, bcm: bool, windowed: bool) -> GenerateSettings:
        """A copy with the guidance and the canvas's choices (`CanvasChoices`) filled in for a run with or without
        BCM, on windows or not."""
        guidance = self.guidance if self.guidance is not None else BCM_GUIDANCE if bcm else GUIDANCE
        given = {name: getattr(self, name) for name in CANVAS_OPTIONS}
        return replace(self, guidance=guidance, **asdict(CanvasChoices.resolve(windowed, **given)))

    def canvas(self) -> CanvasChoices:
        """The canvas's choices, once `for_run` has filled them in."""
        return CanvasChoices(**{name: getattr(self, name) for name in CANVAS_OPTIONS})

    def recorded(self, has_backgrounds: bool) -> dict:
        """What a GEN's meta.json records (and a resumed GEN must match): the settings that change the samples."""
        recorded = {"num": self.num, "steps": self.steps, "guidance": self.guidance, "seed": self.seed,
                    "mask_method": self.mask_method, "scheduler": self.scheduler,
                    "background_every": self.background_every if has_backgrounds else None}
        if self.strength is not None and self.strength < 1:  # (a GEN made from noise records what it always did)
            recorded["strength"] = self.strength
        if self.colours in ("training", "start"):  # (and one painted as drawn)
            recorded["colours"] = self.colours
        if self.size_spread:  # (and one of the training anomalies' sizes)
            recorded["size_spread"] = self.size_spread
        if self.turns is not None and self.turns > 1:  # (and one of unturned starts)
            recorded["turns"] = self.turns
        if self.position_width:  # (and one placed anywhere on the object)
            recorded["position_width"] = self.position_width
        if self.orientations == "any":  # (and one of the training anomalies' orientations)
            recorded["orientations"] = self.orientations
        if has_backgrounds:
            recorded["bcm"] = {"unconditional": self.bcm_unconditional, "noise": self.bcm_noise}
        if self.qc == "on":  # (a GEN made without QC records what it always did)
            recorded["qc"] = {"max_tries": self.qc_max_tries, "area_margin": self.qc_area_margin,
                              "max_off_object": self.qc_max_off_object, "max_disagreement": self.qc_max_disagreement}
        return recorded
