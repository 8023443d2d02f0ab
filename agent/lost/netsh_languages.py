"""What `netsh wlan show networks mode=bssid` calls a network's signal and channel, per display language.

netsh has no option for a fixed language: its labels follow the display language (and, through a
pipe, stay in it: ruvnet/RuView pull request 1429 shows a ja-JP capture). Only the `SSID n` and
`BSSID n` headers are the same everywhere. Each entry below was read in a real capture
(tests/fixtures/corpus/SOURCES.md, "Lost mode"); a language missing here still yields its
networks and BSSIDs, and its signal (the one value that ends in `%`), without the channel.
"""

from __future__ import annotations

# Labels compared after `skeleton` (case folded, accents dropped, spaces squeezed).
SIGNAL_LABELS: dict[str, str] = {
    "signal": "English, German, French (hnykda/wifi-heatmapper win-netsh-networks-{en,de,fr}.txt)",
    "senal": "Spanish, Señal (hnykda/wifi-heatmapper win-netsh-networks-es.txt)",
    "segnale": "Italian (hnykda/wifi-heatmapper win-netsh-networks-it.txt, issue 44)",
    "シグナル": "Japanese (ruvnet/RuView pull request 1429)",
}
CHANNEL_LABELS: dict[str, str] = {
    "channel": "English (hnykda/wifi-heatmapper win-netsh-networks-en.txt)",
    "kanal": "German (hnykda/wifi-heatmapper win-netsh-networks-de.txt)",
    "canal": "French, Spanish (hnykda/wifi-heatmapper win-netsh-networks-{fr,es}.txt)",
    "canale": "Italian (hnykda/wifi-heatmapper win-netsh-networks-it.txt, issue 44)",
    "チャネル": "Japanese (ruvnet/RuView pull request 1429)",
}
# Windows 11 (24H2 on) answers without Location services with a page of words in the display
# language; the Settings URI in it is the same in every language.
LOCATION_DENIED_MARK = "ms-settings:privacy-location"
