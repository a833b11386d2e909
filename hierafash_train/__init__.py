"""Training HieraFashDiff with the hierarchical objective, on diffusers + accelerate (the `train` extra).

A package of its own, beside `hierafash_core`, because it imports diffusers, accelerate, peft and
transformers at module level: the ComfyUI pack and the core import nothing from here, so a pack install
without the train extra never sees these libraries. The method itself (C(t), the loss step, the dataset
layout) stays pure in `hierafash_core.objective` and `hierafash_core.dataset`; this package only binds it
to real models, devices and files.
"""
