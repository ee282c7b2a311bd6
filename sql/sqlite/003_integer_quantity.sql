-- SQLite's INTEGER column keeps whatever it is given that is not an integer ('abc' as text, 1.5 or
-- an overflowed sum as a real), and its arithmetic reads text as a number ('abc' - 50 is -50), so
-- the capture trigger would record a plausible delta for it. PostgreSQL's bigint refuses such
-- values; these triggers make SQLite refuse them too: the statement fails and changes nothing.
CREATE TRIGGER IF NOT EXISTS invsync_integer_quantity_insert BEFORE INSERT ON inventory
WHEN typeof(NEW.quantity) <> 'integer' BEGIN
  SELECT RAISE(ABORT, 'inventory.quantity must be an integer');
END;
CREATE TRIGGER IF NOT EXISTS invsync_integer_quantity_update BEFORE UPDATE OF quantity ON inventory
WHEN typeof(NEW.quantity) <> 'integer' BEGIN
  SELECT RAISE(ABORT, 'inventory.quantity must be an integer');
END;
