"""A refused request whose reason a person reads: the English message goes to the API and the logs, the
Chinese one to the workspace, which speaks Chinese first. One exception base, so every refusal a screen
shows has both and no screen falls back to English mid-sentence."""


class Refusal(Exception):
    def __init__(self, en: str, zh: str | None = None):
        super().__init__(en)
        self.zh = zh or en

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else str(self)
