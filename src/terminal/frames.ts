// What the privileged helper sends the web process on a terminal's Unix socket: frames of one type byte, a
// 32-bit big-endian length and the payload. Output is raw bytes (a character may be split across frames; the
// browser's decoder keeps it whole); the exit frame comes last, after all output. The web process sends raw
// input bytes back, unframed.
export const FRAME_OUTPUT = 0;
export const FRAME_EXIT = 1;
const HEADER = 5;
/** Larger frames are refused: the helper never sends one (a chunk of pty output is at most a few KiB). */
const MAX_FRAME = 4 << 20;

export function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Splits a byte stream into frames; throws on a frame no helper sends. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= HEADER) {
      const type = this.buf.readUInt8(0);
      const length = this.buf.readUInt32BE(1);
      if (length > MAX_FRAME || (type !== FRAME_OUTPUT && type !== FRAME_EXIT)) throw new Error("malformed terminal frame");
      if (this.buf.length < HEADER + length) return;
      const payload = this.buf.subarray(HEADER, HEADER + length);
      this.buf = this.buf.subarray(HEADER + length);
      this.onFrame(type, payload);
    }
  }
}
