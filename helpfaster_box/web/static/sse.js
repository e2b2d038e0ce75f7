// A Server-Sent Events parser over a fetch() ReadableStream (EventSource cannot
// POST). Yields {event, data, id} per event; `data` lines are joined with "\n".
// widget.js carries its own copy of this loop because it must stay one file.

export async function* readSse(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      let cut;
      while ((cut = nextBoundary(buffer)) !== null) {
        const block = buffer.slice(0, cut.at);
        buffer = buffer.slice(cut.at + cut.len);
        const ev = parseBlock(block);
        if (ev) yield ev;
      }
      if (done) break;
    }
    const last = parseBlock(buffer);
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function nextBoundary(buf) {
  const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
  return m ? { at: m.index, len: m[0].length } : null;
}

export function parseBlock(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const key = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (key === "event") event = value;
    else if (key === "data") data.push(value);
    else if (key === "id") id = value;
  }
  return data.length ? { event, data: data.join("\n"), id } : null;
}
