"""The do-not-call list: numbers no campaign, `POST /calls` or `callbridge call` rings."""
