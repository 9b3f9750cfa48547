// The coder page of policy-topics serve: sends the pasted text or the chosen file to POST /code on this
// server and shows each document's topic, probability, status, alternatives and the words that pushed it.
"use strict";

const $ = (id) => document.getElementById(id);
const EXPLAIN_SHOWN = 50;   // words and phrases asked for, to highlight
const EXPLAIN_SAVED = 10;   // in the downloaded CSV, as `policy-topics predict --explain 10`
const MIN_SHOWN = 0.1;      // words with less than a tenth of the strongest word's push are not highlighted
const ORDER = { uncertain: 0, coded: 1, empty: 2 };
let limits = null;
let lastRequest = null;     // {name, body, params} of the last coding that succeeded

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = text ? kind : "";
}

const percent = (p) => (p === null || p === undefined ? "–" : `${(100 * p).toFixed(1)}%`);

async function answer(response) {
  const type = response.headers.get("content-type") || "";
  if (response.ok) return type.startsWith("application/json") ? response.json() : response.blob();
  let message = `the server answered ${response.status}`;
  if (type.startsWith("application/json")) message = (await response.json()).error || message;
  throw new Error(message);
}

async function loadModel() {
  try {
    const meta = await answer(await fetch("/metadata"));
    limits = meta.limits;
    const version = meta.version ? `version ${meta.version}` : "no registered version";
    $("model").textContent = `Model ${meta.loaded} (${version}, run ${meta.run_id || "–"}, trained on ` +
      `${meta.dataset || "?"}). Threshold ${meta.threshold.toFixed(2)}: ${meta.threshold_note}.`;
  } catch (error) {
    $("model").textContent = `The model could not be described: ${error.message}`;
  }
}

// Words of the text with their share of the push towards the topic: words, and the words of phrases.
function shares(explanation) {
  const found = new Map();
  for (const item of explanation || []) {
    if (item.kind === "embeddings" || !(item.share > 0)) continue;
    const words = item.ngram.split(/\s+/);
    for (const word of words) found.set(word, (found.get(word) || 0) + item.share / words.length);
  }
  return found;
}

const fold = (word) => word.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");

function highlighted(text, explanation) {
  const pushes = shares(explanation);
  const strongest = Math.max(0, ...pushes.values());
  const box = element("div", { class: "text" });
  for (const token of text.split(/(\s+)/)) {
    const key = fold(token);  // "trade," (a word of the char n-grams) and "trade" (of the word n-grams)
    const bare = key.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");
    const share = (pushes.get(key) || 0) + (bare !== key ? pushes.get(bare) || 0 : 0);
    if (!share || share < MIN_SHOWN * strongest || !token.trim()) { box.append(token); continue; }
    const strength = 0.15 + 0.75 * (share / strongest);
    const mark = element("mark", { class: strength > 0.6 ? "push strong" : "push", tabindex: "0",
      title: `${(100 * share).toFixed(1)}% of the push`, "aria-label": `${token}: ${(100 * share).toFixed(1)}% of the push` }, token);
    mark.style.setProperty("--strength", strength.toFixed(2));
    box.append(mark);
  }
  return box;
}

function verdict(record) {
  if (record.status === "empty") return "empty text";
  if (record.status === "coded") return `${record.topic} (${record.code})`;
  const best = record.top_topics[0];
  return `uncertain: perhaps ${best.topic} (${best.code})`;
}

function alternatives(record) {
  const listed = record.top_topics.map((t) => `${t.topic} ${percent(t.probability)}`).join(" · ");
  return element("p", { class: "alternatives" }, `Alternatives: ${listed || "none"}`);
}

function mixLine(mix) {
  const parts = mix.map((m) => `${m.topic} ${(100 * m.share).toFixed(0)}% (coded ${(100 * m.coded_share).toFixed(0)}%)`);
  return element("p", { class: "mix" }, `Topic mix of the paragraphs (share of the text): ${parts.join(" · ")}`);
}

function paragraphList(document_) {
  const list = element("ol");
  for (const p of document_.paragraphs) {
    const piece = document_.text.slice(p.start, p.end);
    list.append(element("li", {}, element("strong", {}, `${verdict(p)} – ${percent(p.probability)}`),
      highlighted(piece, p.explanation)));
  }
  return element("details", { class: "paragraphs" }, element("summary", {}, `${document_.paragraphs.length} paragraphs`),
    list);
}

function card(document_, number) {
  const id = `doc-${number}`;
  const head = element("header", {},
    element("h3", { id }, verdict(document_)),
    element("span", { class: `status status-${document_.status}` }, document_.status),
    element("span", { class: "probability" }, `probability ${percent(document_.probability)}`),
    element("span", { class: "doc-id" }, document_.id));
  const item = element("li", { class: "doc", "aria-labelledby": id, "data-status": document_.status }, head);
  if (document_.top_topics.length) item.append(alternatives(document_));
  if (document_.topic_mix && document_.topic_mix.length) item.append(mixLine(document_.topic_mix));
  item.append(highlighted(document_.text, document_.explanation));
  if (document_.paragraphs && document_.paragraphs.length > 1) item.append(paragraphList(document_));
  return item;
}

function show(result, name) {
  const documents = [...result.documents].sort((a, b) =>
    ORDER[a.status] - ORDER[b.status] || (a.probability ?? 2) - (b.probability ?? 2));
  const counts = { coded: 0, uncertain: 0, empty: 0 };
  for (const d of documents) counts[d.status] += 1;
  $("summary").textContent = `${name}: ${documents.length} document(s): ${counts.uncertain} uncertain, ` +
    `${counts.coded} coded, ${counts.empty} empty (threshold ${result.threshold.toFixed(2)}). Uncertain first.`;
  $("results").replaceChildren(...documents.map(card));
  $("legend").hidden = false;
  if (result.warning) say(`Warning: ${result.warning}`, "note");
}

async function input() {
  const file = $("file").files[0];
  if (file) return { name: file.name, body: await file.arrayBuffer() };
  const text = $("text").value;
  if (!text.trim()) throw new Error("Nothing to code: paste a text or choose a file.");
  return { name: "pasted.txt", body: new TextEncoder().encode(text) };
}

function query(name, explain, format) {
  const params = new URLSearchParams({ name, column: $("column").value.trim() || "text",
    encoding: $("encoding").value, explain: String(explain), format });
  if ($("paragraphs").checked) params.set("segment", "paragraphs");
  return `/code?${params}`;
}

async function code(event) {
  event.preventDefault();
  say("");
  $("download").disabled = true;
  lastRequest = null;
  $("code").disabled = true;
  try {
    const { name, body } = await input();
    if (limits && body.byteLength > limits.max_bytes) {
      throw new Error(`${name} is ${body.byteLength.toLocaleString()} bytes, over this server's limit of ` +
        `${limits.max_bytes.toLocaleString()} bytes per request: split it into smaller files, or code it with ` +
        "`policy-topics predict --input FILE`, which has no limit.");
    }
    $("summary").textContent = `Coding ${name}…`;
    const result = await answer(await fetch(query(name, EXPLAIN_SHOWN, "json"), { method: "POST", body }));
    show(result, name);
    lastRequest = { name, body };
    $("download").disabled = false;
  } catch (error) {
    $("results").replaceChildren();
    $("summary").textContent = "Nothing coded.";
    say(error.message);
  } finally {
    $("code").disabled = false;
  }
}

async function download() {
  if (!lastRequest) return;
  const { name, body } = lastRequest;
  try {
    const blob = await answer(await fetch(query(name, EXPLAIN_SAVED, "csv"), { method: "POST", body }));
    const link = element("a", { href: URL.createObjectURL(blob), download: `${name.replace(/\.[^.]*$/, "")}-coded.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    say(`The coded CSV could not be made: ${error.message}`);
  }
}

$("form").addEventListener("submit", code);
$("download").addEventListener("click", download);
loadModel();
