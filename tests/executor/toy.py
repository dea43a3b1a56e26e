"""A tiny regression graph for executor tests: data layer -> MLP (with dropout) -> MSE loss."""
import torch

from nmod.backends.pytorch import DataLayerNM, TrainableNM
from nmod.types import ChannelType, LossType, NeuralType, RegressionValuesType


class ToyData(DataLayerNM):
    @property
    def output_ports(self):
        return {"x": NeuralType(("B", "D"), ChannelType()), "y": NeuralType(("B",), RegressionValuesType())}

    def __init__(self, n: int = 32, dim: int = 4, batch_size: int = 4, shuffle: bool = True, seed: int = 1, name=None):
        super().__init__(name=name)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, dim, generator=g)
        y = x @ torch.arange(1.0, dim + 1) + 0.1 * torch.randn(n, generator=g)
        self.dataset = torch.utils.data.TensorDataset(x, y)
        self.batch_size, self.shuffle = batch_size, shuffle


class ToyMLP(TrainableNM):
    @property
    def input_ports(self):
        return {"x": NeuralType(("B", "D"), ChannelType())}

    @property
    def output_ports(self):
        return {"pred": NeuralType(("B",), RegressionValuesType())}

    def __init__(self, dim: int = 4, hidden: int = 16, dropout: float = 0.0, dropout_cls=torch.nn.Dropout, name=None):
        super().__init__(name=name)
        self.fc1 = torch.nn.Linear(dim, hidden)
        self.norm = torch.nn.LayerNorm(hidden)
        self.drop = dropout_cls(dropout)
        self.fc2 = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.norm(self.fc1(x))))).squeeze(-1)


class ToyMSE(TrainableNM):
    @property
    def input_ports(self):
        return {"pred": NeuralType(("B",), RegressionValuesType()), "y": NeuralType(("B",), RegressionValuesType())}

    @property
    def output_ports(self):
        return {"loss": NeuralType(None, LossType())}

    def __init__(self, name=None):
        super().__init__(name=name)

    def forward(self, pred, y):
        return torch.nn.functional.mse_loss(pred.float(), y.float())


def build(n=32, batch_size=4, shuffle=True, dropout=0.0, seed=0, dropout_cls=torch.nn.Dropout):
    torch.manual_seed(seed)
    data = ToyData(n=n, batch_size=batch_size, shuffle=shuffle)
    mlp = ToyMLP(dropout=dropout, dropout_cls=dropout_cls)
    loss_fn = ToyMSE()
    x, y = data()
    loss = loss_fn(pred=mlp(x=x), y=y)
    return data, mlp, loss


class Opaque:
    """Not a tensor or container: loading it needs arbitrary unpickling."""
