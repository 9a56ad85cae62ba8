/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * klp_convert.h - annotations for livepatch modules converted by klp-convert.
 *
 * A livepatch module that needs a symbol the kernel does not export declares it
 * with one of these macros. The asm label renames the reference to
 *
 *     .klp.sym.rela.<lp_obj>.<sym_obj>.<sym>.<pos>
 *
 * which no linker resolves; `klp-convert` then moves every relocation against it
 * into `.klp.rela.<lp_obj>.<section>` and renames the symbol to the kernel's
 * `.klp.sym.<sym_obj>.<sym>,<pos>` form.
 *
 *   lp_obj   the object that must be loaded before the relocation can be
 *            applied: `vmlinux`, or the patched module's name with '-' as '_'
 *   sym_obj  the object that defines the symbol (usually the same as lp_obj)
 *   sym      the symbol's name as it appears in kallsyms (may contain dots,
 *            e.g. klp_string.12345 or foo.constprop.0)
 *   pos      0 when the name is unique in sym_obj, otherwise its 1-based
 *            position among the same-named symbols of sym_obj
 *
 * The position is separated by '.' rather than ',' because GNU as 2.36 and
 * older reject a comma inside a symbol name; klp-convert accepts both.
 *
 * Example:
 *     extern char *saved_command_line
 *             KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
 *     static const char *get_name(void)
 *             KLP_RELOC_SYMBOL_POS(target_mod, target_mod, get_name, 2);
 *
 * Kbuild's modpost on an unpatched kernel stops at these undefined names:
 * build with `klp-convert build` (kbuild with KBUILD_MODPOST_WARN=1, then
 * the conversion), or run those two steps yourself.
 */
#ifndef KLP_CONVERT_H
#define KLP_CONVERT_H

#define KLP_RELOC_SYMBOL_POS(lp_obj, sym_obj, sym, pos) \
	__asm__(".klp.sym.rela." #lp_obj "." #sym_obj "." #sym "." #pos)

#define KLP_RELOC_SYMBOL(lp_obj, sym_obj, sym) \
	KLP_RELOC_SYMBOL_POS(lp_obj, sym_obj, sym, 0)

/*
 * The klp-convert v7 annotations, for modules converted with symbol maps
 * (klp-convert convert --symbols MAP, or klp-convert SYMBOLS IN OUT): a plain
 * extern declaration plus, for a name that is not unique, its position:
 *
 *     extern const char *get_homonym_string(void);
 *     KLP_MODULE_RELOC(klp_test_target) relocs[] = {
 *             KLP_SYMPOS(get_homonym_string, 2),
 *     };
 *
 * Each entry is { pointer, u32 position }, packed; klp-convert pairs an entry
 * with the relocation that fills its pointer, takes the object from the
 * section name and empties the section in its output.
 */
struct klp_module_reloc {
	void *sym;
	unsigned int sympos;
} __attribute__((packed));

#define KLP_MODULE_RELOC(obj) \
	struct klp_module_reloc \
	__attribute__((section(".klp.module_relocs." #obj), used, aligned(4)))

#define KLP_SYMPOS(symbol, pos) { .sym = (void *)&(symbol), .sympos = (pos) }

#endif /* KLP_CONVERT_H */
