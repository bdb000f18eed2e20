// The vcframe page: voice (sample, upload or microphone), text, components, seed -> audio, mel, history.
// The audio plays while it is made (POST /v1/speech/stream, chunks scheduled back to back with Web Audio); a
// browser without fetch streams or Web Audio runs a job instead and plays the finished file.
// Plain JavaScript, no network asset, no inline code (the page's Content-Security-Policy forbids both).
"use strict";

const HISTORY_LENGTH = 10;
const KINDS = ["encoder", "synthesizer", "vocoder"];

const state = {
  info: null,
  voices: [],
  source: "voice",
  uploadFile: null,
  uploadSeconds: null, // from the browser's own decoding of the file; null until known
  recording: null, // {blob, seconds}
  minReference: {}, // encoder name -> shortest clip it accepts, in seconds
  recorder: null,
  job: null,
  events: null,
  stream: null, // {controller, player, jobId} while a streamed clone runs
  audio: null, // the AudioContext streamed audio plays in (at the stream's sample rate)
  streamRate: 16000, // the last stream's sample rate: the first context is made at it
  busy: false,
  history: [],
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(problem, status) {
    super(problem.detail || `HTTP ${status}`);
    this.hint = problem.hint || "";
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (error) { problem = { detail: `HTTP ${response.status}` }; }
    throw new ApiError(problem, response.status);
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

// -- visible state ---------------------------------------------------------------------------------

function showError(error) {
  const box = $("error");
  box.replaceChildren();
  if (!error) { box.hidden = true; return; }
  const message = document.createElement("strong");
  message.textContent = error.message || String(error);
  box.append(message);
  if (error.hint) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = error.hint;
    box.append(hint);
  }
  box.hidden = false;
}

function setBusy(busy, label = "") {
  state.busy = busy;
  $("clone").disabled = busy;
  $("cancel").hidden = !busy;
  $("progress").hidden = !busy;
  $("progress-label").textContent = label;
  document.body.classList.toggle("busy-cursor", busy);
  if (!busy) { $("progress").value = 0; }
}

function setStatus(text, kind) {
  const status = $("server-status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

// -- start -----------------------------------------------------------------------------------------

async function start() {
  bindEvents();
  try {
    const [info, plugins] = await Promise.all([apiJson("/v1/info"), apiJson("/v1/plugins")]);
    state.info = info;
    fillComponents(plugins);
    await loadVoices();
    updateTextCount();
    const limits = info.limits;
    $("upload-note").textContent =
      `WAV, FLAC, OGG or MP3; at most ${limits.max_upload_seconds} s and ` +
      `${(limits.max_upload_bytes / 1048576).toFixed(0)} MB. 5–10 s of clear speech works best.`;
    setStatus(`ready · vcframe ${info.version}`, "ok");
  } catch (error) {
    setStatus("server unreachable", "down");
    showError(error);
  }
}

function fillComponents(plugins) {
  for (const plugin of plugins.plugins) {
    if (plugin.kind === "encoder" && plugin.min_reference_seconds) state.minReference[plugin.name] = plugin.min_reference_seconds;
  }
  for (const kind of KINDS) {
    const select = $(kind);
    select.replaceChildren();
    const usable = plugins.plugins.filter((p) => p.kind === kind && (p.status === "ok" || p.status === "warning"));
    for (const plugin of usable) {
      const option = document.createElement("option");
      option.value = plugin.name;
      // The weights' quality status sits next to the name, so demo weights are never mistaken for the model's best.
      const weights = plugin.weights_status ? ` · ${plugin.weights_status} weights` : "";
      option.textContent = `${plugin.name}${plugin.default ? " (default)" : ""}${weights}`;
      option.title = [plugin.summary, plugin.weights ? `weights: ${plugin.weights}` : ""].filter(Boolean).join("\n");
      option.dataset.weightsStatus = plugin.weights_status || "";
      option.selected = plugin.default;
      select.append(option);
    }
  }
}

async function loadVoices(selected) {
  const listing = await apiJson("/v1/voices");
  state.voices = listing.voices;
  const select = $("voice-select");
  select.replaceChildren();
  for (const kind of ["sample", "user"]) {
    const voices = state.voices.filter((v) => v.kind === kind);
    if (!voices.length) continue;
    const group = document.createElement("optgroup");
    group.label = kind === "sample" ? "Sample voices" : "Saved voices";
    for (const voice of voices) {
      const option = document.createElement("option");
      option.value = voice.name;
      option.textContent = `${voice.name} (${voice.duration_s.toFixed(1)} s)`;
      group.append(option);
    }
    select.append(group);
  }
  if (selected) select.value = selected;
  showVoice();
}

function currentVoice() {
  return state.voices.find((v) => v.name === $("voice-select").value) || null;
}

function showVoice() {
  const voice = currentVoice();
  $("voice-description").textContent = voice ? voice.description : "No voice available.";
  $("voice-delete").hidden = !(voice && voice.deletable);
  const preview = $("voice-preview");
  if (voice) { preview.src = voice.preview; } else { preview.removeAttribute("src"); }
}

// -- voice sources ---------------------------------------------------------------------------------

function selectSource(source) {
  state.source = source;
  for (const name of ["voice", "upload", "record"]) {
    $(`tab-${name}`).setAttribute("aria-selected", String(name === source));
    $(`panel-${name}`).hidden = name !== source;
  }
  updateSaveVoice();
}

function currentClip() {
  if (state.source === "upload" && state.uploadFile) {
    return { blob: state.uploadFile, name: state.uploadFile.name, seconds: state.uploadSeconds };
  }
  if (state.source === "record" && state.recording) {
    return { blob: state.recording.blob, name: "recording.wav", seconds: state.recording.seconds };
  }
  return null;
}

// The chosen encoder's shortest clip, checked here so that a clip that is too short is never uploaded.
function shortClipError(seconds) {
  const encoder = $("encoder").value;
  const minimum = state.minReference[encoder] || (state.info ? state.info.limits.min_reference_seconds : 0);
  if (seconds === null || seconds === undefined || !minimum || seconds >= minimum) return null;
  return {
    message: `the clip is ${seconds.toFixed(2)} s long; ${encoder} needs at least ${minimum.toFixed(2)} s`,
    hint: "use a longer clip (5–10 s of speech works best)",
  };
}

function updateSaveVoice() {
  $("save-voice").hidden = currentClip() === null;
}

function onUploadChosen() {
  const file = $("upload-file").files[0] || null;
  state.uploadFile = file;
  state.uploadSeconds = null;
  const preview = $("upload-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  if (file) {
    preview.onloadedmetadata = () => {
      if (state.uploadFile !== file || !Number.isFinite(preview.duration)) return;
      state.uploadSeconds = preview.duration;
      const short = shortClipError(state.uploadSeconds);
      if (short) showError(short);
    };
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    if (state.info && file.size > state.info.limits.max_upload_bytes) {
      showError({ message: `${file.name} is larger than the server accepts`, hint: "choose a shorter clip" });
    } else {
      showError(null);
    }
  } else {
    preview.hidden = true;
  }
  updateSaveVoice();
}

// -- microphone ------------------------------------------------------------------------------------

async function startRecording() {
  showError(null);
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError({ message: "this browser cannot record here", hint: "upload a clip instead" });
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/recorder-worklet.js");
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "vcframe-recorder");
    const mute = context.createGain();
    mute.gain.value = 0;
    source.connect(node).connect(mute).connect(context.destination);
    const limit = state.info ? Math.min(state.info.limits.max_upload_seconds, 60) : 30;
    const recorder = { stream, context, node, chunks: [], samples: 0, rate: context.sampleRate, limit };
    node.port.onmessage = (event) => {
      const block = event.data;
      recorder.chunks.push(block);
      recorder.samples += block.length;
      let peak = 0;
      for (let i = 0; i < block.length; i++) peak = Math.max(peak, Math.abs(block[i]));
      $("record-level").value = peak;
      const seconds = recorder.samples / recorder.rate;
      $("record-time").textContent = `${seconds.toFixed(1)} s`;
      if (seconds >= recorder.limit) stopRecording();
    };
    state.recorder = recorder;
    $("record-start").disabled = true;
    $("record-stop").disabled = false;
    $("record-note").textContent = `Recording… (stops by itself after ${limit} s)`;
  } catch (error) {
    showError({ message: `cannot record: ${error.message || error}`, hint: "allow the microphone, or upload a clip" });
  }
}

function stopRecording() {
  const recorder = state.recorder;
  if (!recorder) return;
  state.recorder = null;
  recorder.node.port.onmessage = null;
  recorder.stream.getTracks().forEach((track) => track.stop());
  recorder.context.close();
  const blob = encodeWav(recorder.chunks, recorder.samples, recorder.rate);
  state.recording = { blob, seconds: recorder.samples / recorder.rate };
  const preview = $("record-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
  $("record-start").disabled = false;
  $("record-stop").disabled = true;
  $("record-level").value = 0;
  $("record-note").textContent = `Recorded ${state.recording.seconds.toFixed(1)} s at ${recorder.rate} Hz (WAV).`;
  showError(shortClipError(state.recording.seconds));
  updateSaveVoice();
}

// 16-bit PCM mono WAV from float32 blocks.
function encodeWav(chunks, length, sampleRate) {
  const buffer = new ArrayBuffer(44 + length * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => { for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i)); };
  text(0, "RIFF");
  view.setUint32(4, 36 + length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, length * 2, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) {
      const sample = Math.max(-1, Math.min(1, chunk[i]));
      view.setInt16(offset, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// -- saving and deleting voices ------------------------------------------------------------------------

async function saveVoice() {
  showError(null);
  const clip = currentClip();
  if (!clip) return;
  const short = shortClipError(clip.seconds);
  if (short) { showError(short); return; }
  const form = new FormData();
  form.append("name", $("save-name").value.trim());
  form.append("description", $("save-description").value.trim());
  form.append("consent", $("save-consent").checked ? "true" : "false");
  form.append("encoder", $("encoder").value);
  form.append("clip", clip.blob, clip.name);
  $("save-button").disabled = true;
  try {
    const voice = await apiJson("/v1/voices", { method: "POST", body: form });
    await loadVoices(voice.name);
    selectSource("voice");
    $("save-voice").open = false;
  } catch (error) {
    showError(error);
  } finally {
    $("save-button").disabled = false;
  }
}

async function deleteVoice() {
  const voice = currentVoice();
  if (!voice || !voice.deletable) return;
  if (!window.confirm(`Delete the voice "${voice.name}"?`)) return;
  try {
    await api(`/v1/voices/${encodeURIComponent(voice.name)}`, { method: "DELETE" });
    await loadVoices();
  } catch (error) {
    showError(error);
  }
}

// -- text ------------------------------------------------------------------------------------------

function textLimit() {
  return state.info ? state.info.limits.max_job_chars : 10000;
}

function updateTextCount() {
  const length = $("text").value.length;
  const limit = textLimit();
  $("text-count").textContent = `${length.toLocaleString()} / ${limit.toLocaleString()} characters`;
  $("text").classList.toggle("over", length > limit);
}

// -- cloning ---------------------------------------------------------------------------------------

function buildRequest() {
  const text = $("text").value;
  if (!text.trim()) throw { message: "the text is empty", hint: "type something to say" };
  if (text.length > textLimit()) throw { message: `the text is longer than ${textLimit()} characters`, hint: "shorten it" };
  const form = new FormData();
  form.append("text", text);
  for (const kind of KINDS) if ($(kind).value) form.append(kind, $(kind).value);
  const seed = $("seed").value.trim();
  if (seed) form.append("seed", seed);
  let voiceLabel;
  if (state.source === "voice") {
    const voice = currentVoice();
    if (!voice) throw { message: "no voice chosen", hint: "pick a voice, upload a clip or record one" };
    form.append("voice", voice.name);
    voiceLabel = voice.name;
  } else {
    const clip = currentClip();
    if (!clip) {
      throw { message: state.source === "upload" ? "no clip chosen" : "nothing recorded yet",
              hint: state.source === "upload" ? "choose an audio file" : "press Record, speak, then Stop" };
    }
    const short = shortClipError(clip.seconds);
    if (short) throw short;
    form.append("reference", clip.blob, clip.name);
    voiceLabel = state.source === "upload" ? clip.name : "recording";
  }
  return { form, text, voiceLabel };
}

async function clone() {
  showError(null);
  let request;
  try { request = buildRequest(); } catch (error) { showError(error); return; }
  if (canStream()) { await cloneStreaming(request); return; }
  setBusy(true, "queued…");
  try {
    const job = await apiJson("/v1/jobs", { method: "POST", body: request.form });
    state.job = job;
    follow(job, request);
  } catch (error) {
    setBusy(false);
    showError(error);
  }
}

// -- streamed audio --------------------------------------------------------------------------------

const WAV_HEADER_BYTES = 44;
// Scheduling slack: the first chunk starts this long after it arrives, and so does a chunk that came late.
const STREAM_LEAD_S = 0.05;

function canStream() {
  return Boolean(window.AudioContext && window.ReadableStream && window.AbortController);
}

// One AudioContext at the stream's own sample rate, so chunks are never resampled one by one (no seams).
function audioContextFor(sampleRate) {
  if (state.audio && state.audio.sampleRate === sampleRate) return state.audio;
  if (state.audio) state.audio.close();
  state.audio = new AudioContext({ sampleRate });
  return state.audio;
}

// Plays a 16-bit mono WAV stream as it arrives: the 44-byte header first, then each run of samples as an
// AudioBuffer scheduled right after the previous one (sample-exact times, so the joins make no click).
class StreamPlayer {
  constructor(context, sampleRate, requestedAt) {
    this.context = context;
    this.sampleRate = sampleRate;
    this.requestedAt = requestedAt;
    this.header = new Uint8Array(WAV_HEADER_BYTES);
    this.headerBytes = 0;
    this.carry = null; // an odd byte left over from the last read
    this.samples = 0; // samples scheduled so far
    this.origin = null; // context time of sample 0
    this.late = 0; // chunks that came after their time (a gap in the sound)
    this.firstAudio = null; // seconds from the request to the first sound
    this.sources = [];
    this.onFirstAudio = () => {};
  }

  get seconds() { return this.samples / this.sampleRate; }

  push(bytes) {
    let offset = 0;
    if (this.headerBytes < WAV_HEADER_BYTES) {
      offset = Math.min(WAV_HEADER_BYTES - this.headerBytes, bytes.length);
      this.header.set(bytes.subarray(0, offset), this.headerBytes);
      this.headerBytes += offset;
      if (this.headerBytes === WAV_HEADER_BYTES) this.checkHeader();
    }
    let pcm = bytes.subarray(offset);
    if (this.carry !== null) {
      const joined = new Uint8Array(pcm.length + 1);
      joined[0] = this.carry;
      joined.set(pcm, 1);
      pcm = joined;
      this.carry = null;
    }
    if (pcm.length % 2) {
      this.carry = pcm[pcm.length - 1];
      pcm = pcm.subarray(0, pcm.length - 1);
    }
    if (pcm.length) this.schedule(pcm);
  }

  checkHeader() {
    const view = new DataView(this.header.buffer);
    const tag = (at) => String.fromCharCode(...this.header.subarray(at, at + 4));
    const rate = view.getUint32(24, true);
    if (tag(0) !== "RIFF" || tag(8) !== "WAVE" || view.getUint16(22, true) !== 1 || view.getUint16(34, true) !== 16 || rate !== this.sampleRate) {
      throw { message: "the server sent audio this page cannot play", hint: "reload the page; the server may be newer" };
    }
  }

  schedule(pcm) {
    const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.length);
    const count = pcm.length / 2;
    const buffer = this.context.createBuffer(1, count, this.sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < count; i++) channel[i] = view.getInt16(2 * i, true) / 32768;
    const now = this.context.currentTime;
    if (this.origin === null || this.origin + this.seconds < now) {
      if (this.origin !== null) this.late += 1;
      this.origin = now + STREAM_LEAD_S - this.seconds;
    }
    const when = this.origin + this.seconds;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.start(when);
    source.onended = () => { this.sources = this.sources.filter((playing) => playing !== source); };
    this.sources.push(source);
    this.samples += count;
    if (this.firstAudio === null) {
      this.firstAudio = (performance.now() - this.requestedAt) / 1000 + (when - now);
      this.onFirstAudio(this.firstAudio);
    }
  }

  stop() {
    for (const source of this.sources) source.stop();
    this.sources = [];
  }
}

async function cloneStreaming(request) {
  // Made (or resumed) here, in the click, because browsers let a page start sound only from a user action.
  audioContextFor(state.streamRate).resume();
  if (state.stream && state.stream.player) state.stream.player.stop();
  const stream = { controller: new AbortController(), player: null, jobId: null };
  state.stream = stream;
  const requestedAt = performance.now();
  setBusy(true, "waiting for the first audio…");
  $("progress").removeAttribute("value"); // no fraction known: an indeterminate bar
  let ended = "";
  try {
    const response = await api("/v1/speech/stream", { method: "POST", body: request.form, signal: stream.controller.signal });
    stream.jobId = response.headers.get("X-Vcframe-Job");
    const rate = Number(response.headers.get("X-Vcframe-Sample-Rate"));
    state.streamRate = rate;
    const context = audioContextFor(rate);
    await context.resume();
    const player = new StreamPlayer(context, rate, requestedAt);
    stream.player = player;
    const label = () => `playing · first audio after ${player.firstAudio.toFixed(2)} s · ${player.seconds.toFixed(1)} s received`;
    player.onFirstAudio = () => { $("progress-label").textContent = label(); };
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      player.push(value);
      if (player.firstAudio !== null) $("progress-label").textContent = label();
    }
    const job = await apiJson(`/v1/jobs/${stream.jobId}`);
    if (job.state === "done") {
      await showResult(job.id, request, { firstAudio: player.firstAudio, late: player.late });
    } else if (job.state === "failed") {
      const problem = job.error || {};
      showError({ message: problem.detail || "the synthesis failed", hint: problem.hint || "" });
    } else {
      ended = job.state;
    }
  } catch (error) {
    if (error && error.name === "AbortError") {
      ended = "cancelled";
    } else {
      stream.controller.abort(); // stop the server's work for a stream this page cannot use
      if (stream.player) stream.player.stop();
      showError(error);
    }
  } finally {
    if (state.stream === stream) state.stream = null;
    setBusy(false);
    $("progress").value = 0;
    $("progress-label").textContent = ended;
  }
}

const STAGE_NAMES = { load: "loading", embed: "reading the voice", synthesize: "synthesizing", vocode: "vocoding" };

function follow(job, request) {
  const events = new EventSource(job.links.events);
  state.events = events;
  const finish = () => { events.close(); if (state.events === events) state.events = null; };
  events.addEventListener("state", (event) => {
    const data = JSON.parse(event.data);
    $("progress-label").textContent = data.state === "running" ? "running…" : `${data.state}…`;
  });
  events.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    const progress = $("progress");
    progress.max = Math.max(1, data.total);
    progress.value = data.done;
    $("progress-label").textContent = `${STAGE_NAMES[data.stage] || data.stage} ${data.done}/${data.total}`;
  });
  events.addEventListener("done", async () => {
    finish();
    try {
      await showResult(job.id, request);
    } catch (error) {
      showError(error);
    } finally {
      setBusy(false);
      state.job = null;
    }
  });
  events.addEventListener("failed", (event) => {
    finish();
    const data = JSON.parse(event.data);
    setBusy(false);
    state.job = null;
    showError({ message: data.error ? data.error.detail : "the job failed", hint: data.error ? data.error.hint : "" });
  });
  events.addEventListener("cancelled", () => {
    finish();
    setBusy(false);
    state.job = null;
    $("progress-label").textContent = "cancelled";
  });
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED && state.job && state.job.id === job.id) {
      finish();
      setBusy(false);
      showError({ message: "lost the connection to the server", hint: "check that the server is still running, then reload this page" });
    }
  };
}

async function cancel() {
  if (state.stream) { // hanging up stops the work on the server
    state.stream.controller.abort();
    if (state.stream.player) state.stream.player.stop();
    return;
  }
  if (!state.job) return;
  try {
    await api(`/v1/jobs/${state.job.id}/cancel`, { method: "POST" });
  } catch (error) {
    showError(error);
  }
}

async function showResult(jobId, request, streamed = null) {
  const job = await apiJson(`/v1/jobs/${jobId}`);
  const [audio, mel] = await Promise.all([
    api(job.links.audio).then((r) => r.blob()),
    job.links.mel ? api(job.links.mel).then((r) => r.blob()) : Promise.resolve(null),
  ]);
  const entry = {
    text: request.text,
    voice: request.voiceLabel,
    seed: job.result.seed,
    similarity: job.result.similarity,
    duration: job.result.duration_s,
    components: job.result.components,
    firstAudio: streamed ? streamed.firstAudio : null,
    gaps: streamed ? streamed.late : 0,
    audioUrl: URL.createObjectURL(audio),
    melUrl: mel ? URL.createObjectURL(mel) : null,
    time: new Date(),
  };
  $("result-audio").src = entry.audioUrl;
  $("result-download").href = entry.audioUrl;
  $("result-download").download = `vcframe-${entry.voice}-${entry.seed}.wav`.replace(/[^A-Za-z0-9_.-]/g, "_");
  $("result-facts").textContent = facts(entry);
  const image = $("result-mel");
  if (entry.melUrl) { image.src = entry.melUrl; image.hidden = false; } else { image.hidden = true; }
  $("result").hidden = false;
  addHistory(entry);
}

function facts(entry) {
  const similarity = entry.similarity === null ? "n/a" : entry.similarity.toFixed(3);
  const parts = KINDS.map((kind) => entry.components[kind]).join(" → ");
  let first = entry.firstAudio === null ? "" : ` · first audio after ${entry.firstAudio.toFixed(2)} s`;
  if (entry.gaps) first += ` (${entry.gaps} gap${entry.gaps > 1 ? "s" : ""}: the audio came slower than it plays)`;
  return `similarity to reference ${similarity} · seed ${entry.seed} · ${entry.duration.toFixed(2)} s${first} · ${parts}`;
}

function addHistory(entry) {
  state.history.unshift(entry);
  for (const old of state.history.splice(HISTORY_LENGTH)) {
    URL.revokeObjectURL(old.audioUrl);
    if (old.melUrl) URL.revokeObjectURL(old.melUrl);
  }
  renderHistory();
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  $("history-empty").hidden = state.history.length > 0;
  for (const entry of state.history) {
    const item = document.createElement("li");
    const title = document.createElement("div");
    const shortText = entry.text.length > 80 ? `${entry.text.slice(0, 77)}…` : entry.text;
    title.textContent = `${entry.time.toLocaleTimeString()} · ${entry.voice}: “${shortText}”`;
    const player = document.createElement("audio");
    player.controls = true;
    player.src = entry.audioUrl;
    const row = document.createElement("div");
    row.className = "row";
    const download = document.createElement("a");
    download.href = entry.audioUrl;
    download.download = `vcframe-${entry.seed}.wav`;
    download.textContent = "Download";
    const reuse = document.createElement("button");
    reuse.type = "button";
    reuse.className = "secondary";
    reuse.textContent = "Use this seed";
    reuse.addEventListener("click", () => { $("seed").value = String(entry.seed); });
    const info = document.createElement("span");
    info.className = "note mono";
    info.textContent = facts(entry);
    row.append(download, reuse, info);
    item.append(title, player, row);
    if (entry.melUrl) {
      const image = document.createElement("img");
      image.src = entry.melUrl;
      image.alt = "mel spectrogram";
      item.append(image);
    }
    list.append(item);
  }
}

// -- wiring ----------------------------------------------------------------------------------------

function bindEvents() {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => selectSource(tab.dataset.source));
  }
  $("voice-select").addEventListener("change", showVoice);
  $("voice-delete").addEventListener("click", deleteVoice);
  $("upload-file").addEventListener("change", onUploadChosen);
  $("record-start").addEventListener("click", startRecording);
  $("record-stop").addEventListener("click", stopRecording);
  $("save-button").addEventListener("click", saveVoice);
  $("text").addEventListener("input", updateTextCount);
  $("seed-random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2147483647));
  });
  $("clone").addEventListener("click", clone);
  $("cancel").addEventListener("click", cancel);
}

document.addEventListener("DOMContentLoaded", start);
