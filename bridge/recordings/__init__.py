"""Twilio recordings (voicemails, recorded calls) into the audio store.

`callback` reads Twilio's recording status callback; `rows` keeps the `recordings`
table (the truth about each recording's audio); `fetcher` downloads the audio from
Twilio, stores it and retries with backoff; `sweep` runs due retries in the server.
"""
