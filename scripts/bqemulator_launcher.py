"""Starts bqemulator (PyPI, 1.4.0) with four differences from BigQuery fixed; all arguments go
to its CLI unchanged.

Usage: <venv>/bin/python scripts/bqemulator_launcher.py start [bqemulator start options]
  e.g. start --rest-host 127.0.0.1 --rest-port 9050 --grpc-host 127.0.0.1 --grpc-port 9060
             --project mesh-local [--persistent --data-dir DIR] [--log-level warning]

The bug: on an AppendRows connection only the first request has to carry `write_stream`; the
stream is then bound to the connection and later requests may leave the field empty (the
official clients do). bqemulator's `BigQueryWriteHandler._handle_append_rows` passes every
request's `write_stream` to `_ensure_stream_bound`, which only reuses the bound stream when the
names are equal, so an empty name is looked up as a stream called "" and the connection ends
with NOT_FOUND "Stream not found: " (grpc_api/write_servicer.py, `_ensure_stream_bound` and
`_resolve_append_stream`).

The fix: an empty name reuses the stream (and the target Arrow schema) already bound to the
connection. A non-empty name behaves as before (same name: reuse; other name: rebind), and an
empty name on the first request of a connection still fails as before.

A second bug: REST queries (on the event-loop thread) and Storage Write appends (on gRPC
worker threads) share one DuckDB connection, which is not safe to use from two threads at once;
an append that overlaps a query can hang both for good (seen: REST /readyz stopped answering,
py-spy showed the main thread in DuckDBEngine.execute and a gRPC worker in
BigQueryWriteHandler._flush_to_target). The fix: every thread but the main one gets its own
cursor (DuckDB's per-thread connection to the same database, with the same session settings),
and appends are serialised among themselves, so no connection is ever used by two threads.

A fourth difference from BigQuery, in how a refused append is answered: when DuckDB refuses
the rows of an append (a value its column cannot take, such as JSON holding a lone surrogate),
bqemulator lets the exception end the RPC, so the client sees the whole connection fail with
UNKNOWN. BigQuery answers such an append with `AppendRowsResponse.error` INVALID_ARGUMENT
("Indicates a malformed request or data", in the AppendRowsResponse reference) and keeps the
connection; mesh-ingest treats UNKNOWN as transient, as it must in production (a cut stream
looks the same). The fix: `_perform_append` answers a DuckDB data error (conversion, invalid
input, constraint) with INVALID_ARGUMENT for that append, and a missing table (catalog error)
with NOT_FOUND, as BigQuery does.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import sys
import threading

EXPECTED_VERSION = "1.4.0"


def _patch() -> None:
    from bqemulator import __version__
    from bqemulator.grpc_api import write_servicer

    handler = write_servicer.BigQueryWriteHandler
    original = handler.__dict__.get("_ensure_stream_bound")
    params = list(inspect.signature(original).parameters) if original else []
    if params != ["self", "stream_name", "bound_ctx", "context"]:
        sys.exit(
            f"bqemulator_launcher: bqemulator {__version__} has no "
            "BigQueryWriteHandler._ensure_stream_bound(self, stream_name, bound_ctx, context); "
            f"the patch was written for {EXPECTED_VERSION} and must be revisited"
        )
    if getattr(original, "_mesh_patched", False):
        return

    def _ensure_stream_bound(self, stream_name, bound_ctx, context):
        if not stream_name and bound_ctx is not None:
            return bound_ctx
        return original(self, stream_name, bound_ctx, context)

    _ensure_stream_bound._mesh_patched = True  # type: ignore[attr-defined]
    _ensure_stream_bound.__doc__ = original.__doc__
    handler._ensure_stream_bound = _ensure_stream_bound
    if __version__ != EXPECTED_VERSION:
        print(
            f"bqemulator_launcher: warning: patched bqemulator {__version__}, "
            f"written for {EXPECTED_VERSION}",
            file=sys.stderr,
        )


def _serialise_duckdb() -> None:
    from bqemulator.grpc_api import write_servicer
    from bqemulator.storage import engine

    engine_cls = engine.DuckDBEngine
    connection_property = engine_cls.__dict__.get("connection")
    flush = write_servicer.BigQueryWriteHandler.__dict__.get("_flush_to_target")
    if not isinstance(connection_property, property) or not callable(flush):
        sys.exit("bqemulator_launcher: DuckDBEngine.connection or _flush_to_target not found; revisit the patch")
    main_thread = threading.main_thread()
    local = threading.local()

    def connection(self):
        conn = connection_property.fget(self)
        if threading.current_thread() is main_thread:
            return conn
        cursor = getattr(local, "cursor", None)
        if cursor is None or getattr(local, "owner", None) is not conn:
            cursor = conn.cursor()
            cursor.execute("SET TimeZone = 'UTC'")  # as the engine sets on its connection
            local.cursor, local.owner = cursor, conn
        return cursor

    engine_cls.connection = property(connection)
    write_lock = threading.Lock()

    @functools.wraps(flush)
    def serialised_flush(*args, **kwargs):
        with write_lock:
            return flush(*args, **kwargs)

    write_servicer.BigQueryWriteHandler._flush_to_target = serialised_flush


def _refusals_as_bigquery_answers_them() -> None:
    import duckdb
    import grpc
    from bqemulator.grpc_api import write_servicer

    handler = write_servicer.BigQueryWriteHandler
    perform = handler.__dict__.get("_perform_append")
    error_response = getattr(write_servicer, "_error_response", None)
    if not callable(perform) or not callable(error_response):
        sys.exit("bqemulator_launcher: _perform_append or _error_response not found; revisit the patch")
    if getattr(perform, "_mesh_patched", False):
        return

    @functools.wraps(perform)
    def perform_append(self, bound_stream, *args, **kwargs):
        try:
            return perform(self, bound_stream, *args, **kwargs)
        except duckdb.CatalogException as exc:
            return error_response(bound_stream.name, f"Table not found: {exc}", grpc.StatusCode.NOT_FOUND)
        except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.ConstraintException) as exc:
            return error_response(bound_stream.name, f"Rows refused: {exc}", grpc.StatusCode.INVALID_ARGUMENT)

    perform_append._mesh_patched = True  # type: ignore[attr-defined]
    handler._perform_append = perform_append


GRPC_HANDLER_THREADS = 256


def _grpc_thread_pool() -> None:
    import grpc.aio
    from bqemulator.grpc_api import server as grpc_server_module

    if grpc_server_module.grpc.aio is not grpc.aio or not callable(getattr(grpc.aio, "server", None)):
        sys.exit("bqemulator_launcher: bqemulator's gRPC server no longer calls grpc.aio.server; revisit the patch")
    original = grpc.aio.server
    if getattr(original, "_mesh_patched", False):
        return

    @functools.wraps(original)
    def server(*args, **kwargs):
        if kwargs.get("migration_thread_pool") is None and len(args) < 1:
            kwargs["migration_thread_pool"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=GRPC_HANDLER_THREADS, thread_name_prefix="bqemu-grpc"
            )
        return original(*args, **kwargs)

    server._mesh_patched = True  # type: ignore[attr-defined]
    grpc.aio.server = server


def main() -> int:
    _patch()
    _serialise_duckdb()
    _refusals_as_bigquery_answers_them()
    _grpc_thread_pool()
    from bqemulator.cli import main as cli_main

    # standalone_mode=True (the default) makes click exit with the command's status.
    return cli_main(args=sys.argv[1:], prog_name="bqemulator")


if __name__ == "__main__":
    sys.exit(main())
