"""Files uploaded to the model server (``POST /code``, the coder page's upload): a CSV or TSV with a text
column, or a text file (one document), read in memory into the documents ``policy-topics predict`` would
read from the same file. Every problem is a :class:`~policy_topics.errors.RequestError` whose one line
says what is wrong with the file and what to do.
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePath

from policy_topics.errors import DataFormatError, RequestError
from policy_topics.serving.documents import Document, Reading, delimited
from policy_topics.serving.protocol import Limits

UPLOAD_KINDS = {".csv": "csv", ".tsv": "tsv", ".txt": "txt"}
_SIGNATURES = {b"PK\x03\x04": "a zip archive, as .xlsx and .docx files are", b"%PDF": "a PDF",
               b"\xd0\xcf\x11\xe0": "an old Office file, .xls or .doc"}


def _kind(name: str, data: bytes) -> str:
    kind = UPLOAD_KINDS.get(PurePath(name).suffix.lower())
    looks = next((what for magic, what in _SIGNATURES.items() if data.startswith(magic)), None)
    if looks is None and b"\x00" in data[:4096]:
        looks = "binary data"
    if kind is None or looks is not None:
        what = f"it is {looks}" if looks else "its name does not end in .csv, .tsv or .txt"
        raise RequestError(415, f"{name} is not a CSV or text file ({what}); upload a .csv, .tsv or .txt file "
                                "(from a spreadsheet: save as CSV UTF-8)")
    return kind


def _decoded(name: str, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise RequestError(422, f"unknown encoding '{encoding}'; use e.g. utf-8, latin-1 or cp1252") from None
    except UnicodeDecodeError as exc:
        raise RequestError(422, f"{name} is not valid {encoding} ({exc.reason} at byte {exc.start}); save it as "
                                "UTF-8, or choose its encoding (e.g. latin-1, cp1252)") from None


def read_upload(name: str, data: bytes, reading: Reading, limits: Limits) -> list[Document]:
    """The documents of an uploaded file named ``name`` (its suffix says the format)."""
    if not data.strip():
        raise RequestError(422, f"{name} is empty: nothing to code")
    kind = _kind(name, data)
    text = _decoded(name, data, reading.encoding)
    if kind == "txt":
        return [Document(name, text)]
    csv.field_size_limit(2**31 - 1)  # one long text is still one field
    try:
        documents = list(delimited(io.StringIO(text, newline=""), name, "\t" if kind == "tsv" else ",", reading))
    except DataFormatError as exc:  # the command's flags named as the page and /code name them
        raise RequestError(422, str(exc).replace("(--column)", "(the text column)").replace(
            "(--id-column)", "(id_column)")) from None
    except csv.Error as exc:
        raise RequestError(422, f"{name} is not a readable {kind.upper()} file ({exc})") from None
    if not documents:
        raise RequestError(422, f"{name} has a header line but no rows: nothing to code")
    if len(documents) > limits.max_texts:
        raise RequestError(413, f"{name} holds {len(documents):,} documents, more than the server's limit of "
                                f"{limits.max_texts:,} per request; split the file, or code it with "
                                "`policy-topics predict --input FILE` (no limit)")
    return documents
