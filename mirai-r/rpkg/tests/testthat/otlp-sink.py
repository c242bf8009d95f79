"""A minimal OTLP/HTTP trace receiver for the R tests (test-tracing.R).

Listens on 127.0.0.1 (an ephemeral port, written to argv[1]), answers every
`POST /v1/traces` with 200 and an empty protobuf response, and appends each span it
decodes from the ExportTraceServiceRequest body to argv[2] as one JSON line: name,
trace and span ids, parent id, status code, and attributes (strings, ints, bools).
The protobuf wire format is walked by hand, so no Python package is needed.
"""
import gzip
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, wt, v


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def any_value(buf):
    for num, _, v in fields(buf):
        if num == 1:
            return v.decode("utf-8", "replace")
        if num == 2:
            return bool(v)
        if num == 3:
            return v - (1 << 64) if v >= 1 << 63 else v
    return None


def span(buf):
    out = {"name": "", "trace_id": "", "span_id": "", "parent_span_id": "", "status_code": 0,
           "attributes": {}}
    for num, _, v in fields(buf):
        if num == 1:
            out["trace_id"] = v.hex()
        elif num == 2:
            out["span_id"] = v.hex()
        elif num == 4:
            out["parent_span_id"] = v.hex()
        elif num == 5:
            out["name"] = v.decode("utf-8", "replace")
        elif num == 9:
            key, val = "", None
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    key = v2.decode("utf-8", "replace")
                elif n2 == 2:
                    val = any_value(v2)
            out["attributes"][key] = val
        elif num == 15:
            for n2, _, v2 in fields(v):
                if n2 == 3:
                    out["status_code"] = v2
    return out


def spans(body):
    for num, _, rs in fields(body):  # resource_spans
        if num != 1:
            continue
        for n2, _, ss in fields(rs):  # scope_spans
            if n2 != 2:
                continue
            for n3, _, sp in fields(ss):  # spans
                if n3 == 2:
                    yield span(sp)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        with open(sys.argv[2], "a") as f:
            for s in spans(body):
                f.write(json.dumps(s) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
