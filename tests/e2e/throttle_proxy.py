#!/usr/bin/env python3
"""A TCP proxy on loopback that forwards to TARGET and slows the answers down to RATE bytes per
second per connection, for e2e tests that must catch a transfer in the middle (a conversion
cancelled or its server killed mid-pull) without depending on the machine's speed.

  throttle_proxy.py LISTEN_HOST:LISTEN_PORT TARGET_HOST:TARGET_PORT RATE_BYTES_PER_SECOND

Requests (client to target) pass at full speed; answers (target to client) are sent in chunks of
at most RATE/20 bytes, 50 ms apart. Prints "listening" once bound."""
import asyncio, sys

listen, target, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
lhost, lport = listen.rsplit(":", 1)
thost, tport = target.rsplit(":", 1)
CHUNK = max(1, rate // 20)


async def pipe(reader, writer, throttle):
    try:
        while True:
            data = await reader.read(CHUNK if throttle else 65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if throttle:
                await asyncio.sleep(len(data) / rate)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(creader, cwriter):
    try:
        treader, twriter = await asyncio.open_connection(thost, int(tport))
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pipe(creader, twriter, False), pipe(treader, cwriter, True))


async def main():
    server = await asyncio.start_server(handle, lhost, int(lport))
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
