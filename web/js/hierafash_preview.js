// HieraFashDiff: show the Hierarchical Prompt Scheduler's stage preview inside the node.
//
// The scheduler sends its preview text as UI output ({"text": [...]}) when it runs. This extension puts
// that text in a read-only multiline box on the node, so artists see which sampler steps fall in which
// stage without wiring a Preview Any node. The box is display only: it is never saved in the workflow
// (widgets_values stay exactly the node's own widgets) and never sent with the prompt.
// A text output of this pack whose first line carries a WARNING (the stage preview, the edit plan shown by a
// Preview Any node) also raises a toast, so a warning is seen even where its text box is scrolled or folded.
// This file is served at /extensions/hierafashdiff/js/, three levels below the app's /scripts/.
import { api } from "../../../scripts/api.js";
import { app } from "../../../scripts/app.js";

const NODE = "HieraFashHierarchicalPromptScheduler";
const WIDGET = "stage_preview";
const WARN_OUTLINE = "2px solid #d9822b"; // the box of a preview that carries a warning
const PLACEHOLDER = "Queue the workflow to see which sampler steps fall in which stage.";
const CACHED =
  "(cached) This node's inputs match an earlier run, so ComfyUI reused that result and sent no new preview. " +
  "Change any of its inputs to see the stage preview here.";

function previewWidget(node) {
  let widget = node.widgets?.find((w) => w.name === WIDGET);
  if (!widget) {
    const box = document.createElement("textarea");
    box.className = "comfy-multiline-input";
    box.readOnly = true;
    box.spellcheck = false;
    box.placeholder = PLACEHOLDER;
    box.title = "Stage preview from the last run (read only)";
    Object.assign(box.style, { fontFamily: "monospace", fontSize: "10px", whiteSpace: "pre", overflow: "auto" });
    widget = node.addDOMWidget(WIDGET, "hierafash_preview", box, {
      getValue: () => box.value,
      setValue: (value) => {
        box.value = value ?? "";
      },
      serialize: false,
    });
    widget.serialize = false; // not in widgets_values: saved workflows keep their positions
  }
  return widget;
}

app.registerExtension({
  name: "hierafashdiff.SchedulePreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      previewWidget(this);
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text;
      if (text == null) return;
      const widget = previewWidget(this);
      widget.value = Array.isArray(text) ? text.join("\n") : String(text);
      if (widget.element?.style) widget.element.style.outline = warnings(widget.value).length ? WARN_OUTLINE : "";
      this.setDirtyCanvas?.(true, true);
    };
  },
});

// A node whose inputs match an earlier run is not executed again and sends no preview; say so instead of
// leaving an empty box (a preview already shown stays).
api.addEventListener("execution_cached", ({ detail }) => {
  for (const id of detail?.nodes ?? []) {
    const node = app.graph?.getNodeById(Number(id));
    if (node?.type === NODE) {
      const widget = previewWidget(node);
      if (!widget.value) widget.value = CACHED;
    }
  }
});

// Warnings sit on the first line of this pack's text outputs (hierafash_core: format_preview, EditPlan.describe);
// the edit plan puts each further warning on a line of its own.
function warnings(text) {
  const [first = "", ...rest] = String(text).split("\n");
  if (!first.includes("WARNING")) return [];
  const found = [first.slice(first.indexOf("WARNING")), ...rest.filter((line) => line.startsWith("WARNING"))];
  return found.map((line) => line.replace(/^WARNING:\s*/, ""));
}

// A text output from one of this pack's nodes, or from a node (Preview Any) showing one of their outputs.
function fromThisPack(node) {
  const isOurs = (n) => String(n?.type ?? "").startsWith("HieraFash");
  return isOurs(node) || (node?.inputs ?? []).some((_, slot) => isOurs(node.getInputNode?.(slot)));
}

// A warning toast stays until closed (a run may take longer than any timeout); a node's next output replaces it.
const shownToasts = new Map(); // node id -> its toast

api.addEventListener("executed", ({ detail }) => {
  const text = detail?.output?.text;
  const node = app.graph?.getNodeById(Number(detail?.display_node ?? detail?.node));
  const toasts = app.extensionManager?.toast;
  if (text == null || !toasts || !fromThisPack(node)) return;
  if (shownToasts.has(node.id)) toasts.remove(shownToasts.get(node.id));
  shownToasts.delete(node.id);
  const found = warnings(Array.isArray(text) ? text.join("\n") : text);
  if (!found.length) return;
  const toast = { severity: "warn", summary: `${node.title}: warning`, detail: found.join("\n") };
  shownToasts.set(node.id, toast);
  toasts.add(toast);
});
