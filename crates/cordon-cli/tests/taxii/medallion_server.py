#!/usr/bin/env python3
"""Run medallion (the OASIS TAXII 2.1 reference server) with its memory
backend on loopback for Cordon's tests and benchmarks.

    medallion_server.py DIR PORT [--indicators N] [--same-date] [--page-size N]

writes DIR/config.json and DIR/data.json (one API root `api1`, a collection
`feed` holding N indicators of 198.51.100.0/24 and 203.0.113.0/24
addresses, a writable collection `inbox`), then serves on 127.0.0.1:PORT.
User `cordon`, password `medallion-pass`.

While the file DIR/fail exists, requests for objects whose `next` or
`added_after` parameter is set are answered 503, the way a server that
goes away in the middle of a pull looks to its client."""

import argparse
import datetime
import json
import os
import sys
import uuid

COLLECTION = "feed"
INBOX = "inbox"


def stamp(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def indicator(i, created):
    net = "198.51.100" if i % 2 == 0 else "203.0.113"
    value = f"{net}.{i % 250 + 1}" if i < 500 else f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'cordon-test-{i}')}",
        "created": stamp(created),
        "modified": stamp(created),
        "name": f"test indicator {i}",
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": stamp(created),
    }


def write(directory, port, count, same_date, page_size):
    base = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
    objects, manifest = [], []
    for i in range(count):
        created = base + datetime.timedelta(seconds=i)
        added = base if same_date else created + datetime.timedelta(minutes=1)
        o = indicator(i, created)
        objects.append(o)
        manifest.append({
            "id": o["id"],
            "date_added": stamp(added),
            "version": o["modified"],
            "media_type": "application/stix+json;version=2.1",
        })
    root = f"http://127.0.0.1:{port}/api1/"
    data = {
        "/discovery": {
            "title": "medallion for Cordon's tests",
            "description": "reference TAXII 2.1 server",
            "default": root,
            "api_roots": [root],
        },
        "api1": {
            "information": {
                "title": "api1",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 64 * 1024 * 1024,
            },
            "status": [],
            "collections": [
                {
                    "id": COLLECTION, "title": "feed", "can_read": True, "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects, "manifest": manifest,
                },
                {
                    "id": INBOX, "title": "inbox", "can_read": True, "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [], "manifest": [],
                },
            ],
        },
    }
    with open(os.path.join(directory, "data.json"), "w") as f:
        json.dump(data, f)
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": os.path.join(directory, "data.json"),
        },
        "users": {"cordon": "medallion-pass"},
        "taxii": {"max_page_size": page_size},
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("port", type=int)
    p.add_argument("--indicators", type=int, default=25)
    p.add_argument("--same-date", action="store_true")
    p.add_argument("--page-size", type=int, default=100)
    a = p.parse_args()
    write(a.dir, a.port, a.indicators, a.same_date, a.page_size)

    import logging
    from medallion import application_instance, load_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = load_app(os.path.join(a.dir, "config.json"))
    flag = os.path.join(a.dir, "fail")
    inner = app.wsgi_app

    def failing(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if os.path.exists(flag) and ("next=" in query or "added_after=" in query):
            start_response("503 Service Unavailable", [
                ("Content-Type", "application/taxii+json;version=2.1"),
            ])
            return [b'{"title": "Unavailable", "http_status": "503"}']
        return inner(environ, start_response)

    app.wsgi_app = failing
    print(f"medallion listening on 127.0.0.1:{a.port}", flush=True)
    application_instance.run(host="127.0.0.1", port=a.port, threaded=True)


if __name__ == "__main__":
    sys.exit(main())
