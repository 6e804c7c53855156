"""Table contracts: the single source of every table's schema, key, partitioning and write mode."""

from lakehouse.contracts.model import Column, ContractViolation, Layer, TableContract, WriteMode
from lakehouse.contracts.tables import ALL_TABLES, contract_for

__all__ = ["ALL_TABLES", "Column", "ContractViolation", "Layer", "TableContract", "WriteMode", "contract_for"]
