#!/usr/bin/env python3
"""What a correct authenticator's hmac-secret output is, computed from the credential id as the
software authenticator wraps it (ctap2.py) and the CTAP 2.1 §12.5 algorithm, independently of
libfido2 and vault: HMAC-SHA-256(CredRandomWithUV or CredRandomWithoutUV, salt).

  expected_hmac.py MASTER_HEX RP_ID CREDENTIAL_ID_HEX SALT_HEX UV(0|1)   -> output hex"""
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctap2  # noqa: E402

master, rp_id, cred_id, salt, uv = sys.argv[1:6]
auth = ctap2.Authenticator(bytes.fromhex(master), None, False, False, lambda: ctap2.OK)
found = auth._unwrap(hashlib.sha256(rp_id.encode()).digest(), bytes.fromhex(cred_id))
if found is None:
    sys.exit('not a credential of this authenticator')
_, cr_uv, cr_no_uv = found
print(hmac.new(cr_uv if uv == '1' else cr_no_uv, bytes.fromhex(salt), hashlib.sha256).hexdigest())
