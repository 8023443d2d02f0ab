"""The Acceptable Use Policy sign-off: when to ask, what was decided, and the dialog that asks.

`decide` is pure (records + policy version + renewal rules + now -> whether to ask and why),
`records` keeps this user's decisions and hands each one to the service's inbox, and `dialog`
is the tkinter window a person reads and signs. The dialog knows nothing of records: the tray
runs it (`python -m agent.desktop.consent.dialog`), then records what it answered.
"""

from agent.desktop.consent.decide import Prompt, Renewal, SignOff, signoff_prompt

__all__ = ["Prompt", "Renewal", "SignOff", "signoff_prompt"]
