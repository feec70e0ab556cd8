"""Software-defined assets: data -> adapter -> evaluation -> champion, plus production traffic."""
