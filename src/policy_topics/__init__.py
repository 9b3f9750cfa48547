"""policy-topics: code political and policy texts into Comparative Agendas Project (CAP) topics."""

__version__ = "0.1.0"
