"""What `manage-bde -status` prints in each display language Homeroom reads: the one table of it.

manage-bde speaks the display language and writes it in the console's OEM code
page, so "Estado de conversión" reaches a pipe as "Estado de conversi¢n" (cp850)
or, decoded as UTF-8, with a replacement character. Every label and value is
therefore compared by its *skeleton* (`skeleton`): lower-case ASCII letters and
digits only, every other character dropped. "État de la conversion",
"Ã‰tat de la conversion" and "\\ufffdtat de la conversion" all become
"tatdelaconversion". The skeletons of different entries here never collide.

Each entry is (the text as manage-bde prints it, where it was seen). "seen"
names the language of a real capture listed in tests/fixtures/corpus/SOURCES.md;
"unverified" is the expected wording, not yet seen in a public capture (a
capture that shows otherwise should correct it). A value that is in no table is
not guessed: the check says `unknown` and shows the printed text, so an
unverified entry can only ever turn an `unknown` into a verdict.

Only the first source of truth is language-neutral (Get-BitLockerVolume's
enum names, Win32_EncryptableVolume's numbers); this table is for the fallback.
"""

from __future__ import annotations

import unicodedata

LANGUAGES = ("en", "es", "fr", "de")

# The field labels, per language. Keys are the fields the parser reads.
LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "conversion": {
        "en": ("Conversion Status",),
        "es": ("Estado de conversión", "Estado de la conversión"),
        "fr": ("État de la conversion",),
        "de": ("Konvertierungsstatus",),
    },
    "percentage": {
        "en": ("Percentage Encrypted",),
        "es": ("Porcentaje cifrado",),
        "fr": ("Pourcentage chiffré",),
        "de": ("Verschlüsselt (Prozent)",),
    },
    "protection": {
        "en": ("Protection Status",),
        "es": ("Estado de protección",),
        "fr": ("État de la protection",),
        "de": ("Schutzstatus",),
    },
    "lock": {
        "en": ("Lock Status",),
        "es": ("Estado de bloqueo",),
        "fr": ("État du verrouillage",),
        "de": ("Sperrungsstatus",),
    },
    "protectors": {
        "en": ("Key Protectors",),
        "es": ("Protectores de clave",),
        "fr": ("Protecteurs de clés",),
        "de": ("Schlüsselschutzvorrichtungen",),
    },
}

# Conversion Status values -> Get-BitLockerVolume's VolumeStatus names. "Used space only
# encrypted" is Windows' default on new devices: all written data is encrypted.
CONVERSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "FullyEncrypted": (
        ("Fully Encrypted", "seen: en"),
        ("Used Space Only Encrypted", "seen: en"),
        ("Cifrado solo de espacio usado", "seen: es"),
        ("Espace utilisé uniquement chiffré", "seen: fr"),
        ("Nur verwendeter Speicherplatz ist verschlüsselt", "unverified"),
        ("Vollständig verschlüsselt", "unverified"),
    ),
    "FullyDecrypted": (
        ("Fully Decrypted", "seen: en"),
        ("Vollständig entschlüsselt", "seen: de"),
        ("Totalmente descifrado", "unverified"),
        ("Entièrement déchiffré", "unverified"),
    ),
    "EncryptionInProgress": (
        ("Encryption in Progress", "seen: en"),
        ("Verschlüsselung wird durchgeführt", "seen: de"),
        ("Cifrado en curso", "unverified"),
        ("Chiffrement en cours", "unverified"),
    ),
    "EncryptionSuspended": (("Encryption Paused", "unverified"),),
    "DecryptionInProgress": (
        ("Decryption in Progress", "unverified"),
        ("Entschlüsselung wird durchgeführt", "unverified"),
        ("Descifrado en curso", "unverified"),
        ("Déchiffrement en cours", "unverified"),
    ),
    "DecryptionSuspended": (("Decryption Paused", "unverified"),),
}

# Protection Status values, matched as the start of the printed value (English adds
# " (1 reboots left)" to a suspension that ends by itself).
PROTECTION: dict[str, tuple[tuple[str, str], ...]] = {
    "On": (
        ("Protection On", "seen: en"),
        ("Protección activada", "seen: es"),
        ("Protection activée", "seen: fr"),
        ("Der Schutz ist aktiviert", "seen: de"),
    ),
    "Off": (
        ("Protection Off", "seen: en"),
        ("Protección desactivada", "unverified"),
        ("Protection désactivée", "unverified"),
        ("Der Schutz ist deaktiviert", "seen: de"),
    ),
}

# Key protector names -> KeyProtectorType names. A value printed on the label's own line
# ("None Found", "Keine gefunden") means there is none, in any language.
PROTECTORS: dict[str, tuple[tuple[str, str], ...]] = {
    "Tpm": (("TPM", "seen: en, es, fr, de"),),
    "TpmPin": (
        ("TPM And PIN", "seen: en"),
        ("TPM y PIN", "unverified"),
        ("TPM et code confidentiel", "unverified"),
        ("TPM und PIN", "unverified"),
    ),
    "TpmPinStartupKey": (("TPM And PIN And Startup Key", "unverified"),),
    "TpmStartupKey": (("TPM And Startup Key", "unverified"),),
    "RecoveryPassword": (
        ("Numerical Password", "seen: en"),
        ("Contraseña numérica", "seen: es"),
        ("Mot de passe numérique", "seen: fr"),
        ("Numerisches Kennwort", "unverified"),
    ),
    "Password": (
        ("Password", "unverified"),
        ("Contraseña", "seen: es"),
        ("Mot de passe", "unverified"),
        ("Kennwort", "unverified"),
    ),
    "ExternalKey": (
        ("External Key", "unverified"),
        ("External Key (Required for automatic unlock)", "unverified"),
        ("Clave externa", "unverified"),
        ("Clé externe", "unverified"),
        ("Externer Schlüssel", "unverified"),
    ),
}


def skeleton(text: str) -> str:
    """Lower-case ASCII letters and digits of `text`; accents, mojibake and punctuation dropped."""
    plain = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in plain.casefold() if ch.isascii() and ch.isalnum())


def _index(table: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, str]:
    return {
        skeleton(text): field
        for field, by_language in table.items()
        for texts in by_language.values()
        for text in texts
    }


def _values(table: dict[str, tuple[tuple[str, str], ...]]) -> dict[str, str]:
    return {skeleton(text): name for name, entries in table.items() for text, _ in entries}


LABEL_FIELDS = _index(LABELS)
CONVERSION_NAMES = _values(CONVERSIONS)
PROTECTION_NAMES = _values(PROTECTION)
PROTECTOR_NAMES = _values(PROTECTORS)


def field_of(label: str) -> str | None:
    """Which field a printed label is ("conversion", "protection", ...), in any language here."""
    return LABEL_FIELDS.get(skeleton(label))


def conversion_name(value: str) -> str:
    """The VolumeStatus name of a printed Conversion Status, or "" when it is in no table."""
    return CONVERSION_NAMES.get(skeleton(value), "")


def protection_name(value: str) -> str:
    """On, Off, or "Unknown" for a printed Protection Status (manage-bde also prints "Unknown")."""
    folded = skeleton(value)
    # Longest first: no entry is a prefix of another today, but the order keeps it so.
    for known in sorted(PROTECTION_NAMES, key=len, reverse=True):
        if folded.startswith(known):
            return PROTECTION_NAMES[known]
    return "Unknown"


def protector_name(value: str) -> str:
    """The KeyProtectorType name of a printed protector; the printed text when it is in no table."""
    return PROTECTOR_NAMES.get(skeleton(value), value)
