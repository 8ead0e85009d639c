"""`emnet shapes "<spec>"`: output shape, parameters and MACs of every layer of a CNN stack."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from emnet.shapes.layers import SYNTAX

    p = sub.add_parser(
        "shapes",
        help="CNN shape calculator: output shapes, parameters and MACs of a layer stack",
        description="Trace a CNN layer stack with PyTorch's shape arithmetic and print each "
        "layer's output shape, parameter count and multiply-accumulates (MACs), with totals.",
        epilog="Layer syntax\n------------\n" + SYNTAX + "\nExamples:\n"
        '  emnet shapes "1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10"\n'
        '  emnet shapes --input 3x32x32 "conv64k3s2p1b0 bn relu pool3s2p1 gap flatten fc10"\n',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help='the stack, e.g. "1x28x28 conv20k5 pool2 flatten fc10"')
    p.add_argument(
        "--input",
        metavar="SHAPE",
        default=None,
        help="input shape CxHxW or F, when the spec does not start with one",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from emnet.shapes import Input, format_table, parse, total_macs, total_params, trace

    layers = parse(args.spec)
    if args.input is not None:
        head = parse(args.input)
        if len(head) != 1 or not isinstance(head[0], Input):
            raise ValueError(f"--input: expected CxHxW (e.g. 1x28x28) or F, got {args.input!r}")
        layers = head + layers
    if len(layers) > 1 and any(isinstance(layer, Input) for layer in layers[1:]):
        raise ValueError("the input shape is given twice (in the spec and by --input)")
    rows = trace(None, layers)
    if args.json:
        payload = {
            "layers": [
                {
                    "index": r.index,
                    "layer": r.name,
                    "type": r.description,
                    "input": list(r.in_shape),
                    "output": list(r.out_shape),
                    "params": r.params,
                    "macs": r.macs,
                }
                for r in rows
            ],
            "total_params": total_params(rows),
            "total_macs": total_macs(rows),
        }
        print(json.dumps(payload, indent=2))
    else:
        print(format_table(rows))
    return 0
