"""The model: the frozen base (a Stable Diffusion checkpoint or the tiny preset's), the stream layout, per-branch
LoRA, SAIM and BCM inside one attention processor, and `DualAnoDiffModel`, which puts them together."""
