"""The SQL console's sandbox processes: each analyst statement runs in a process of its
own under the operating system's limits, never in the process serving the dashboard.

`sql_console.py` starts this file once per server process as a script
(`python -I sql_sandbox.py FD`, a clean environment; it imports only the standard
library, DuckDB and pyarrow, never the credits_core package). That process, the
*zygote*, waits on the socket FD for requests: a JSON request and the write end of a
pipe. For each it forks a *statement process* (about 30 ms, where starting Python
would take 300 ms), which

1. moves to the snapshot's private folder, opens a fresh in-memory DuckDB, attaches the
   snapshot READ_ONLY and applies `sandbox_settings`: a memory limit, no temp directory
   (nothing spills or is written anywhere), external access off (no files, no ATTACH of
   files, no COPY TO, no extensions), and the configuration locked so that no statement
   can undo it;
2. limits itself: address space (RLIMIT_AS) to what it uses once set up plus the
   request's memory budget; CPU seconds (RLIMIT_CPU: SIGXCPU, then SIGKILL); the size of
   any file it writes to 0 bytes (RLIMIT_FSIZE; with SIGXFSZ ignored the write fails);
   and its life (a real-time alarm: SIGALRM, whose default action ends the process,
   `ALARM_GRACE_S` after the time limit);
3. sends "ready", runs the statement, and sends one JSON message saying what happened
   ("rows", "no_rows", "refused", "too_large", "out_of_memory", "failed",
   "unavailable") followed, for rows, by the result as an Arrow IPC stream of at most
   `result_bytes` bytes. Messages are framed by an 8-byte length.

The zygote ignores SIGCHLD, so the kernel reaps statement processes; it exits when the
server closes the socket (or dies). The parent reads at most the byte cap from the
pipe and stops waiting at the time limit; whatever the statement does, only its own
process can run out of memory or time.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import struct
import sys
from typing import NoReturn

import duckdb
import pyarrow as pa

CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
BATCH_ROWS = 64
ALARM_GRACE_S = 0.25  # the statement process ends this long after the parent stops waiting
FRAME = struct.Struct("!Q")


def sandbox_settings(memory_limit_bytes: int) -> tuple[str, ...]:
    """The settings, in this order; the last two make the rest permanent."""
    return (
        "SET TimeZone = 'UTC'",
        f"SET memory_limit = '{int(memory_limit_bytes)}B'",
        "SET temp_directory = ''",
        "SET max_temp_directory_size = '0B'",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    )


# ---------------------------------------------------------------- the zygote


def zygote(fd: int) -> None:
    """Fork a statement process for each request on the socket, until it closes."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    server = socket.socket(fileno=fd)
    while True:
        try:
            header, fds, _, _ = socket.recv_fds(server, FRAME.size, 1)
        except OSError:
            return
        if len(header) < FRAME.size or not fds:
            return  # the server closed the socket
        request = _receive_exactly(server, FRAME.unpack(header)[0])
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            serve(fds[0], json.loads(request))
        os.close(fds[0])


def _receive_exactly(server: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = server.recv(size - len(data))
        if not chunk:
            raise SystemExit(0)
        data += chunk
    return bytes(data)


# ---------------------------------------------------------------- a statement process


def serve(fd: int, request: dict) -> NoReturn:
    """A statement process's whole life: set up, limit, run, reply on the pipe `fd`, and
    exit at once (no clean-up of DuckDB: the process is gone when the pipe closes)."""
    out = os.fdopen(fd, "wb", closefd=False)
    try:
        os.chdir(request["folder"])
        try:
            con = open_sandbox(request)
        except duckdb.Error as error:
            reply(out, "unavailable", message(error))
            return
        limit_resources(request)
        send(out, b"ready")
        run(con, request, out)
    except MemoryError:
        reply(out, "out_of_memory")
    except Exception as error:  # a message for the analyst, never a traceback
        reply(out, "failed", f"The query's process failed: {type(error).__name__}")
    finally:
        os._exit(0)


def open_sandbox(request: dict) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={**CONFIG, "threads": request["threads"]})
    con.execute("ATTACH $path AS ledger (READ_ONLY)", {"path": request["snapshot"]})
    con.execute("USE ledger")
    for setting in sandbox_settings(request["memory_bytes"] // 2):
        con.execute(setting)
    return con


def limit_resources(request: dict) -> None:
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    address_space = in_use + request["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime) + request["cpu_s"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, request["time_limit_s"] + ALARM_GRACE_S)


def run(con: duckdb.DuckDBPyConnection, request: dict, out) -> None:
    sql, row_limit = request["sql"], request["row_limit"]
    try:
        if len(con.extract_statements(sql)) != 1:
            reply(out, "refused", "Run one statement at a time (this text has several).")
            return
        relation = con.sql(sql)
        if relation is None:
            reply(out, "no_rows")
            return
        reader = relation.limit(row_limit + 1).to_arrow_reader(BATCH_ROWS)
        batches, size = [], 0
        for batch in reader:
            size += batch.nbytes
            if size > request["result_bytes"]:
                reply(out, "too_large")
                return
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except MemoryError:
        reply(out, "out_of_memory")
        return
    except Exception as error:  # DuckDB's errors, and Arrow's (OSError) while fetching
        kind = "out_of_memory" if "Out of Memory" in str(error) else "failed"
        reply(out, kind, message(error))
        return
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    reply(out, "rows")
    send(out, sink.getvalue().to_pybytes())


def send(out, data: bytes) -> None:
    out.write(FRAME.pack(len(data)))
    out.write(data)
    out.flush()


def reply(out, outcome: str, text: str = "") -> None:
    send(out, json.dumps({"outcome": outcome, "message": text}).encode())


def message(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return "DuckDB: " + "\n".join(lines[:6])


if __name__ == "__main__":
    zygote(int(sys.argv[1]))
