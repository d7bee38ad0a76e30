"""What people read: paper tables, the step figure, report figures, cost counts, sRGB rendering."""
