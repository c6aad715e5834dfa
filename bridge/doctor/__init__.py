"""`callbridge doctor`: checks that a deployment can take calls, before a caller finds out.

Settings, the routing file, the ElevenLabs key and agents (audio formats), the Twilio
credentials and number (where its calls go), and the public URL; `--fix` repairs the
agents' formats and the number's webhooks, keeping the values it replaced.
"""

from bridge.doctor.render import render_json, render_text
from bridge.doctor.results import CheckResult, Report
from bridge.doctor.run import Options, run_doctor

__all__ = ["CheckResult", "Options", "Report", "render_json", "render_text", "run_doctor"]
