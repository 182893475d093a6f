"""``python -m consortia.privacy``: ``serve --config tm.toml`` runs a transaction
manager; ``keygen --out FILE --passphrase-file FILE`` makes an encrypted X25519 key file
and prints its public key (base64)."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from consortia.privacy import keys as keyfiles
from consortia.privacy.box import public_bytes
from consortia.privacy.settings import PrivacySettings, read_secret
from consortia.types.errors import ConsortiaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consortia.privacy")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a transaction manager")
    serve.add_argument("--config", type=Path, required=True)
    keygen = sub.add_parser("keygen", help="make an encrypted X25519 key file")
    keygen.add_argument("--out", type=Path, required=True)
    keygen.add_argument("--passphrase-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            key = keyfiles.generate()
            keyfiles.save_key(args.out, key, read_secret(args.passphrase_file, "passphrase"))
            print(base64.b64encode(public_bytes(key)).decode())
            return 0
        from consortia.privacy.server import run  # the web stack only when serving

        run(PrivacySettings.load(args.config))
        return 0
    except (ConsortiaError, FileExistsError) as exc:
        print(f"consortia privacy: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
