"""HieraFashDiff, the method: schedule, prompts, vocabularies, pose, masks.

Plain Python and torch; never imports ComfyUI, so every function here is testable on its own.
"""
