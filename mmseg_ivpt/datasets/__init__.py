from .shapes import ShapesSegDataset, generate_shapes_dataset

__all__ = ['ShapesSegDataset', 'generate_shapes_dataset']
