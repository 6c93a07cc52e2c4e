"""Small files for upload tests (no tests here): a real PNG and PDF header, and a tight policy."""

from __future__ import annotations

from shared.platform.uploads import UploadPolicy

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


PDF = b"%PDF-1.7\n" + b"1 0 obj <<>> endobj\n" * 10


POLICY = UploadPolicy(max_bytes=1024, content_types=frozenset({"image/png", "application/pdf", "text/csv"}))
