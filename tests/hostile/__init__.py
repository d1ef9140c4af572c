"""The hostile-input collection: what an attacker, a broken client or a careless admin
sends, one file per door (messages, the web, each channel, templates, the outbox). The
next probe adds a case here rather than a new file elsewhere."""
