// A cap on request bodies for every hub route. A declared Content-Length over the cap is refused at once;
// a chunked body is counted as a handler reads it, so nothing is read before the handler has checked who
// is asking, and a reader never holds more than the cap. (Hono's bodyLimit reads chunked bodies up front,
// before authentication.) Proxied requests never come here: the proxy streams them.
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";

export class BodyTooLarge extends HTTPException {
  constructor(readonly maxBytes: number) {
    super(413, { message: `The request body is larger than this hub accepts (${maxBytes} bytes).` });
  }
}

/** The error a body read failed with, if it was the cap (streams may wrap the reason). */
export function bodyTooLarge(err: unknown): BodyTooLarge | undefined {
  if (err instanceof BodyTooLarge) return err;
  if (err instanceof Error && err.cause instanceof BodyTooLarge) return err.cause;
  return undefined;
}

export function limitBody(maxBytes: () => number): MiddlewareHandler {
  return async (c, next) => {
    // GET and HEAD carry no body; asking the node adapter's request for one would build a full web Request.
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    const raw = c.req.raw;
    if (!raw.body) return next();
    const max = maxBytes();
    const declared = raw.headers.get("content-length");
    if (declared !== null && !raw.headers.has("transfer-encoding")) {
      // Tell the client not to send the rest on this connection; node then closes it instead of draining.
      if (Number(declared) > max) {
        c.header("Connection", "close");
        throw new BodyTooLarge(max);
      }
      return next();
    }
    // Chunked, or a body whose length nobody declared: counted as it is read.
    let seen = 0;
    const counted = raw.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > max) controller.error(new BodyTooLarge(max));
          else controller.enqueue(chunk);
        },
      }),
    );
    // From the URL, not from `raw`: the node adapter's request object cannot be the input of a Request.
    c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body: counted, signal: raw.signal, duplex: "half" } as RequestInit);
    return next();
  };
}
