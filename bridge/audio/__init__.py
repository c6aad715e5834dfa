"""Where call audio lives: post-call audio from ElevenLabs and Twilio recordings.

`AUDIO_STORE` picks the store: `file://PATH` (a folder) or `s3://BUCKET/PREFIX`
(any S3-compatible service). Object names are made by `names`, never taken from a
request.
"""
