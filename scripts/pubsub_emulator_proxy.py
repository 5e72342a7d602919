"""Sits in front of Google's Pub/Sub emulator and fixes one difference from Pub/Sub.

Usage: python scripts/pubsub_emulator_proxy.py LISTEN_PORT EMULATOR_PORT

The difference: Google's REST clients send enum query parameters as numbers, with the
system parameter `$alt=json;enum-encoding=int` (the Rust `google-cloud-pubsub` SchemaService
sends `GET …/schemas/<id>?view=0&$alt=json;enum-encoding=int`). Pub/Sub answers that; the
emulator's REST gateway (cloud-pubsub-emulator 0.8) never answers a request with a numeric
`view`, so the client times out. Seen with curl: `?view=FULL` answers, `?view=2` hangs.

The fix: in HTTP/1.1 requests (REST), a numeric `view` in the query becomes its name
(SchemaView: 0 SCHEMA_VIEW_UNSPECIFIED, 1 BASIC, 2 FULL). Nothing else is changed, and HTTP/2
connections (gRPC: streaming pull, publish) pass through byte for byte.
"""

import asyncio
import re
import sys

VIEWS = {b"0": b"SCHEMA_VIEW_UNSPECIFIED", b"1": b"BASIC", b"2": b"FULL"}
NUMERIC_VIEW = re.compile(rb"([?&]view=)([012])(?=[& ])")
HTTP2_PREFACE = b"PRI * HTTP/2.0"


async def pipe(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def http1(buf, client, upstream):
    """Forwards requests one by one, rewriting each request line; responses are piped."""
    while True:
        while b"\r\n\r\n" not in buf:
            more = await client.read(1 << 16)
            if not more:
                upstream.close()
                return
            buf += more
        head, buf = buf.split(b"\r\n\r\n", 1)
        line, _, headers = head.partition(b"\r\n")
        line = NUMERIC_VIEW.sub(lambda m: m.group(1) + VIEWS[m.group(2)], line)
        length, chunked = 0, False
        for h in headers.split(b"\r\n"):
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        upstream.write(line + b"\r\n" + headers + b"\r\n\r\n")
        if chunked:  # not parsed: the rest of the connection passes through unchanged
            upstream.write(buf)
            await pipe(client, upstream)
            return
        while len(buf) < length:
            more = await client.read(1 << 16)
            if not more:
                break
            buf += more
        upstream.write(buf[:length])
        buf = buf[length:]
        await upstream.drain()


async def handle(client_r, client_w, emulator_port):
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", emulator_port)
    except OSError:
        client_w.close()
        return
    first = await client_r.read(1 << 16)
    back = asyncio.create_task(pipe(up_r, client_w))
    if first.startswith(HTTP2_PREFACE) or not first:
        up_w.write(first)
        await pipe(client_r, up_w)
    else:
        await http1(first, client_r, up_w)
    await back


async def main(listen_port, emulator_port):
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, emulator_port), "127.0.0.1", listen_port
    )
    print(f"proxy listening on 127.0.0.1:{listen_port} for the emulator on {emulator_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
