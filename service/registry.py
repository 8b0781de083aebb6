"""The actors the service can host, by the name config.yaml uses for them.

Values are `module:Class` paths, imported only by the process that hosts the actor.
`actor_classes` in config.yaml adds or overrides entries (extensions, tests).
"""

ACTOR_CLASSES: dict[str, str] = {
    "journal": "actors.journal:JournalActor",
    "cash": "actors.cash:CashActor",
    "positions": "actors.positions:PositionsActor",
    "portfolio": "actors.portfolio:PortfolioActor",
    "risk": "actors.risk:RiskActor",
    "execution": "actors.execution:ExecutionActor",
    "prices": "actors.prices:PricesActor",
    "drawdown": "actors.drawdown:DrawdownActor",
    "reconciliation": "actors.reconciliation:ReconciliationActor",
}
