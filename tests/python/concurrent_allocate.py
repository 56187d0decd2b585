"""1,000 concurrent allocate calls through python-libmaas for the 100 Ready
machines the test seeded: prints the JSON summary
{"ok": n, "conflict": n, "other": [...], "owners": {system_id: owner}}."""

import asyncio
import json
import os

from maas.client import connect
from maas.client.viscera.machines import MachineNotFound


async def main():
    client = await connect(os.environ["MAAS_URL"], apikey=os.environ["MAAS_KEY"])
    n = int(os.environ.get("ALLOCATIONS", "1000"))
    results = await asyncio.gather(
        *(client.machines.allocate(comment="race %d" % i) for i in range(n)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    conflict = [r for r in results if isinstance(r, MachineNotFound)]
    other = [repr(r) for r in results if isinstance(r, Exception) and not isinstance(r, MachineNotFound)]
    machines = await client.machines.list()
    owners = {m.system_id: (m.owner.username if m.owner else None) for m in machines}
    print(json.dumps({
        "ok": len(ok),
        "distinct": len({m.system_id for m in ok}),
        "conflict": len(conflict),
        "other": other[:5],
        "owners": owners,
    }))


asyncio.run(main())
