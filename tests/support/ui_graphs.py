"""Small hand-made UI-format graphs and the /object_info they are read against, for the workflow tests."""

from __future__ import annotations

from hierafash_cli import workflow as wf

OBJECT_INFO = {
    "Loader": {"input": {"required": {"ckpt_name": [["tiny.safetensors"], {}]}}, "input_order":
               {"required": ["ckpt_name"]}, "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Load"},
    "Sampler": {"input": {"required": {"model": ["MODEL", {}], "seed": ["INT", {"default": 0,
                                                                                 "control_after_generate": True}],
                                       "steps": ["INT", {"default": 20}], "name": ["COMBO", {"options": ["a", "b"]}]},
                          "optional": {"strength": ["FLOAT", {"default": 1.0}]}},
                "input_order": {"required": ["model", "seed", "steps", "name"], "optional": ["strength"]},
                "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "Sampler"},
    "Image": {"input": {"required": {"image": [["a.png"], {"image_upload": True}], "flag": ["BOOLEAN", {}]}},
              "output": ["IMAGE"], "output_name": ["IMAGE"], "display_name": "Load Image"},
    "Int": {"input": {"required": {"value": ["INT", {"control_after_generate": True}]}}, "output": ["INT"],
            "output_name": ["INT"], "display_name": "Int"},
    "Patch": {"input": {"required": {"model": ["MODEL", {}]}}, "output": ["MODEL"], "output_name": ["MODEL"],
              "display_name": "Patch"},
}


def node(id_, type_, values=None, inputs=(), title=None, mode=0, **extra):
    n = {"id": id_, "type": type_, "mode": mode, "inputs": [{"name": name, "type": t, "link": link}
                                                             for name, t, link in inputs], **extra}
    if values is not None:
        n["widgets_values"] = values
    if title:
        n["title"] = title
    return n


def graph():
    return {"version": 0.4, "nodes": [
        node(1, "Loader", ["big.safetensors"], title="Checkpoint",
             properties={"models": [{"name": "big.safetensors", "url": "https://example.org/big.ckpt",
                                     "directory": "checkpoints"}]}),
        node(2, "Patch", inputs=[("model", "MODEL", 1)], mode=wf.BYPASSED),
        node(3, "Reroute", inputs=[("", "*", 2)]),
        node(4, "Int", [7, "fixed"], title="Steps"),
        node(5, "Sampler", [42, "randomize", 20, "b"], inputs=[("model", "MODEL", 3), ("steps", "INT", 4)]),
        node(6, "Image", ["photo.png", "image", True]),
        node(7, "Note", ["a note"]),
        node(8, "Sampler", [1, "fixed", 3, "a", 0.5], inputs=[("model", "MODEL", 5)], mode=wf.MUTED),
    ], "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 5, 0, "MODEL"],
                 [4, 4, 0, 5, 2, "INT"], [5, 1, 0, 8, 0, "MODEL"]]}
