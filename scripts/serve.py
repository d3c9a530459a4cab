"""`make serve [AUTH=off]` / `make stop`: TorchServe in the background from serve/, on config.properties."""

import argparse

from stockcast import ROOT
from stockcast.cli import user_errors_exit
from stockcast.serving.server import Server
from stockcast.serving.settings import MODEL_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--auth", choices=["on", "off"], default="on",
                        help="off: no token authorization (--disable-token-auth), for local experiments only")
    args = parser.parse_args()
    server = Server.default(ROOT)
    with user_errors_exit():
        if args.action == "stop":
            print("TorchServe stopped." if server.stop() else "TorchServe is not running.")
            return
        pid = server.pid()
        if pid is not None and server.serves_this_config(pid):
            print(f"TorchServe is already running (pid {pid}) at {server.url('inference')}: `make stop` stops it, "
                  "`make stop serve` restarts it with the current archive.")
            return
        server.start(auth=args.auth == "on")
    print(f"TorchServe is serving {MODEL_NAME} (pid {server.pid()}):")
    print(f"  predictions  POST {server.url('inference')}/predictions/{MODEL_NAME}")
    print(f"  model info   GET  {server.url('management')}/models/{MODEL_NAME}?customized=true")
    print(f"  metrics      GET  {server.url('metrics')}/metrics")
    if args.auth == "off":
        print("  token authorization is OFF (AUTH=off): for local experiments only")
    else:
        print(f"  keys         {server.key_file.relative_to(ROOT)} (inference key for 8080, management key for 8081)")
    print(f"  logs         {server.logs.relative_to(ROOT)}/   stop with `make stop`")


if __name__ == "__main__":
    main()
