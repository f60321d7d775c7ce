// The segment editor: a small builder that writes the filter's JSON, and a live
// count of the JSON as it stands (POST /console/segments/count, the API's count),
// with the grammar's errors listed by path. The JSON box stays the source of truth:
// without JavaScript the form still posts it.
"use strict";

(function () {
  const form = document.getElementById("segment-form");
  if (!form) return;
  const box = document.getElementById("f-filter");
  const errorList = document.getElementById("filter-errors");
  const countLine = document.getElementById("live-count");
  const builder = document.getElementById("builder");
  const leaves = document.getElementById("b-leaves");
  const combine = document.getElementById("b-combine");
  let serial = 0;

  // Each kind of leaf: its inputs, and how their values make the leaf.
  const OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists"];
  const KINDS = {
    tag: {inputs: [["tag", "Tag", "text"]], leaf: (v) => ({tag: v.tag})},
    attribute: {
      inputs: [["attribute", "Attribute", "text"], ["op", "Operator", OPS], ["value", "Value (JSON or text)", "text"]],
      leaf: (v) => (v.op === "exists" ? {attribute: v.attribute, op: "exists"}
        : {attribute: v.attribute, op: v.op, value: jsonOrText(v.value)}),
    },
    event: {
      inputs: [["event", "Event name", "text"], ["count_gte", "At least (times)", "number"],
               ["within_days", "Within days (empty: ever)", "number"]],
      leaf: (v) => Object.assign({event: v.event, count_gte: Number(v.count_gte || 1)},
        v.within_days ? {within_days: Number(v.within_days)} : {}),
    },
    opened_within_days: {inputs: [["days", "Days", "number"]], leaf: (v) => ({opened_within_days: Number(v.days)})},
    clicked_within_days: {inputs: [["days", "Days", "number"]], leaf: (v) => ({clicked_within_days: Number(v.days)})},
    field: {
      inputs: [["field", "Field", ["email_domain", "timezone", "status", "created_at"]],
               ["op", "Operator", ["eq", "ne", "in", "gt", "gte", "lt", "lte", "exists"]], ["value", "Value", "text"]],
      leaf: (v) => (v.op === "exists" ? {field: v.field, op: "exists"}
        : {field: v.field, op: v.op, value: v.op === "in" ? v.value.split(",").map((s) => s.trim()) : v.value}),
    },
    topic: {inputs: [["topic", "Topic key", "text"]], leaf: (v) => ({topic: v.topic})},
  };

  function jsonOrText(text) {
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  function input(id, label, type) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const lab = document.createElement("label");
    lab.htmlFor = id;
    lab.textContent = label;
    let control;
    if (Array.isArray(type)) {
      control = document.createElement("select");
      for (const option of type) {
        const o = document.createElement("option");
        o.value = o.textContent = option;
        control.appendChild(o);
      }
    } else {
      control = document.createElement("input");
      control.type = type;
      if (type === "number") control.min = "1";
    }
    control.id = id;
    wrap.append(lab, control);
    return [wrap, control];
  }

  function addLeaf(kind) {
    const spec = KINDS[kind];
    const item = document.createElement("li");
    item.className = "leaf";
    item.dataset.kind = kind;
    const n = ++serial;
    const controls = {};
    for (const [name, label, type] of spec.inputs) {
      const [wrap, control] = input(`b-${n}-${name}`, label, type);
      controls[name] = control;
      item.appendChild(wrap);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove condition ${n}`);
    remove.addEventListener("click", () => { item.remove(); compose(); });
    item.appendChild(remove);
    item.leaf = () => {
      const values = {};
      for (const name in controls) values[name] = controls[name].value;
      return spec.leaf(values);
    };
    item.addEventListener("input", compose);
    item.addEventListener("change", compose);
    leaves.appendChild(item);
    controls[spec.inputs[0][0]].focus();
    compose();
  }

  // The builder's conditions as the filter, written into the JSON box.
  function compose() {
    const parts = Array.from(leaves.children).map((item) => item.leaf());
    box.value = JSON.stringify({[combine.value]: parts}, null, 2);
    scheduleCount();
  }

  function showErrors(errors) {
    errorList.replaceChildren();
    for (const path of Object.keys(errors || {}).sort()) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = path;
      li.append(code, ": " + [].concat(errors[path]).join(" "));
      errorList.appendChild(li);
    }
    box.setAttribute("aria-invalid", errors && Object.keys(errors).length ? "true" : "false");
  }

  let timer = null;
  let asked = 0;
  function scheduleCount() {
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }

  async function count() {
    let filter;
    try {
      filter = JSON.parse(box.value);
    } catch (e) {
      showErrors({filter: ["Not valid JSON: " + e.message]});
      countLine.textContent = "";
      return;
    }
    const mine = ++asked;
    countLine.textContent = "Counting…";
    try {
      const answer = await window.consolePost(form.dataset.countUrl, {filter: filter});
      if (mine !== asked) return; // a newer question is on its way
      if (answer.status === 200) {
        showErrors({});
        countLine.textContent = `${answer.body.count.toLocaleString("en-US")} subscribers match now.`;
      } else {
        showErrors(answer.body.errors || {filter: ["The count failed."]});
        countLine.textContent = "";
      }
    } catch (e) {
      if (mine === asked) countLine.textContent = "The count could not be fetched; saving still checks the filter.";
    }
  }

  builder.hidden = false;
  document.getElementById("b-add").addEventListener("click", () => addLeaf(document.getElementById("b-kind").value));
  combine.addEventListener("change", () => { if (leaves.children.length) compose(); });
  box.addEventListener("input", scheduleCount);
  for (const button of document.querySelectorAll(".use-example")) {
    button.addEventListener("click", () => {
      box.value = button.dataset.example;
      box.focus();
      scheduleCount();
    });
  }
  count();
})();
