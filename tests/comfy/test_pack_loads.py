"""The pack loads into the real ComfyUI and describes every node fully."""

HIERAFASH_NODES = {"HieraFashConceptIdeation", "HieraFashAttributeIteration", "HieraFashHierarchicalPromptScheduler",
                   "HieraFashPoseMaskBuilder", "HieraFashApplyPoseControlNet", "HieraFashAttributeEdit",
                   "HieraFashPreserveSource", "HieraFashConvertCheckpoint"}


def test_object_info_lists_nodes_with_tooltips(comfy):
    info = comfy.get("/object_info")
    ours = {name: spec for name, spec in info.items() if spec["python_module"].endswith("hierafashdiff")}
    assert set(ours) >= HIERAFASH_NODES
    for name, spec in ours.items():
        assert spec["category"].startswith("HieraFashDiff"), name
        assert spec["description"], name
        for group in ("required", "optional"):
            for input_name, input_spec in spec["input"].get(group, {}).items():
                options = input_spec[1] if len(input_spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert all(spec["output_tooltips"]), f"{name} has an output without a tooltip"


def test_pack_import_failed_nowhere(comfy):
    log = comfy.log_tail(400)
    assert "IMPORT FAILED" not in "\n".join(line for line in log.splitlines() if "hierafash" in line.lower())
