"""Land regularization records: parties (who may hold land), rights and restrictions on
parcels, and the source documents behind them (migration 0021; vocabulary in
layers/tenure.py).

records.py reads (through accounts.reading, so PostgreSQL decides who sees personal data),
edit.py writes parties and rights, documents.py takes and serves scans and photos.
"""
